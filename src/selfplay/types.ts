// Shared self-play types: task types, roles and buffer entries (spec 4.2, 4.8).

export type TaskType = 'ded' | 'abd' | 'ind';
export type Role = 'propose' | 'solve';
export const TASK_TYPES: readonly TaskType[] = ['abd', 'ded', 'ind'];
export const ROLES: readonly Role[] = ['propose', 'solve'];

/** The task types a config's steps use: raw proposer prompts make closed-expression deduction tasks only. */
export function activeTaskTypes(c: { proposerPrompts: 'chat' | 'raw' }): readonly TaskType[] {
  return c.proposerPrompts === 'raw' ? ['ded'] : TASK_TYPES;
}

/** A task in a buffer: a triplet (ded/abd: one input) or an induction task (N inputs + message). */
export interface TaskEntry {
  id: string;
  type: TaskType;
  /** Canonical program (`f(x) = …`). */
  program: string;
  arity: number;
  /** One tuple for ded/abd, N tuples for ind. */
  inputs: number[][];
  outputs: number[];
  /** Canonical closed expression per input (`p[i]`), what the deduction solver sees. */
  closed: string[];
  message?: string;
  /** Binary operators in the program (a logged complexity measure). */
  binaryOps: number;
  /** Step at which it was added (0 = seeding). */
  step: number;
  /** Seed entries are never evicted. */
  seed: boolean;
  /** Learnability s estimated when it was proposed (difficulty tiers); absent for seeds. */
  estimatedSolveRate?: number | null;
  /** Where the task came from: the model, or a seed template (then the run is not zero-data). */
  origin: 'model' | 'identity_seed' | 'template';
}

/** Canonical dedup key: program + input(s) (spec 4.3 dedupBuffer). */
export function taskKey(t: Pick<TaskEntry, 'type' | 'program' | 'inputs'>): string {
  return `${t.program}|${t.inputs.map((i) => i.join(',')).join(';')}`;
}
