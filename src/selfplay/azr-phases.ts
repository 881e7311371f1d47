// The phases of one AZR step (spec 4.9), in order. Each takes the records of the phases before it and
// returns a new typed record (drawn → proposed → judged → rolled out → checked → scored), so a later
// phase never sees a field an earlier one has not filled. Every random choice comes from the run's rng,
// in the order below: the draw, the proposal sampling seed, the same-step solver draw, the rollout seed.
import type { RunConfig } from '../config.ts';
import type { Completion, StepStats } from '../policy.ts';
import { activeTaskTypes } from './buffers.ts';
import type { StepContext } from './context.ts';
import { diversityBonus, programShape } from './diversity.ts';
import { formatOk } from './format.ts';
import {
  encodePrompts,
  generateGrouped,
  samplingOptions,
  sequenceMeanWeights,
  updateBatch,
  type EncodedPrompt,
} from './generation.ts';
import { promptFamily, type PromptFamily } from './prompt-family.ts';
import type { JudgedProposal } from './proposals.ts';
import { RAW_PROPOSER_STOPS, RAW_SOLVER_STOPS, rawProposerPrompt } from './raw-proposer.ts';
import {
  binaryProposerReward,
  difficultyTier,
  improvementProposerReward,
  learnability,
  proposerReward,
  solverReward,
  stepAdvantages,
  type ScoredSequence,
} from './rewards.ts';
import type { GenerationRecord, PendingProposal, TaskEntry, TaskType } from './types.ts';
import { checkSolverResponses, validateProposals, validateRawProposals } from './validation.ts';

/** What every phase of step t reads: the run, the step number and the config's derived switches. */
export interface StepSetup {
  ctx: StepContext;
  c: RunConfig;
  t: number;
  raw: boolean;
  family: PromptFamily;
  types: readonly TaskType[];
  improvement: boolean;
}

export function stepSetup(ctx: StepContext): StepSetup {
  const c = ctx.config;
  return {
    ctx,
    c,
    t: ctx.step + 1,
    raw: c.proposerPrompts === 'raw',
    family: promptFamily(ctx.deps.tokenizer, c),
    types: activeTaskTypes(c),
    improvement: c.learnabilityReward === 'improvement',
  };
}

// ---- the draw: everything taken from the buffers as they stand at the start of step t ------------------

export interface ProposerPrompt {
  type: TaskType;
  prompt: EncodedPrompt;
  /** The buffered program an induction proposal is about (null for deduction and abduction). */
  source: TaskEntry | null;
  refs: TaskEntry[];
}

export interface Drawn {
  prompts: ProposerPrompt[];
  /** solverOrder = 'previous_step': the solver tasks, drawn before anything of step t is inserted. */
  solverTasks: Partial<Record<TaskType, TaskEntry[]>>;
  /** diversityMeasure = 'novel_shape': the program shapes each buffer holds. */
  bufferShapes: Partial<Record<TaskType, Set<string>>>;
}

export function draw(s: StepSetup): Drawn {
  const { ctx, c, types, family } = s;
  const solverTasks: Drawn['solverTasks'] = {};
  if (c.solverOrder === 'previous_step')
    for (const type of types) solverTasks[type] = drawSolverTasks(s, type);
  const inductionSources = [...ctx.buffers.ded.entries, ...ctx.buffers.abd.entries];
  const bufferShapes: Drawn['bufferShapes'] = {};
  if (c.diversityCoef > 0 && c.diversityMeasure === 'novel_shape') {
    for (const type of types)
      bufferShapes[type] = new Set(ctx.buffers[type].entries.map((e) => programShape(e.program)));
  }
  const perType = c.batchPerGroup * (c.oversample ? c.oversampleFactor : 1);
  const prompts: ProposerPrompt[] = [];
  for (const type of types) {
    for (let j = 0; j < perType; j++) {
      if (type === 'ind') {
        const source = ctx.rng.choice(inductionSources);
        const text = family.inductionProposer(source.program, source.arity, c.inductionInputs);
        prompts.push({ type, source, refs: [], prompt: encodePrompts(ctx.deps.tokenizer, [text])[0] });
      } else {
        const refs = ctx.buffers[type].sampleRefs(ctx.rng, c.refs);
        const text = s.raw ? rawProposerPrompt(refs) : family.proposer(type, refs);
        prompts.push({ type, source: null, refs, prompt: encodePrompts(ctx.deps.tokenizer, [text])[0] });
      }
    }
  }
  return { prompts, solverTasks, bufferShapes };
}

function drawSolverTasks(s: StepSetup, type: TaskType, recent: readonly TaskEntry[] = []): TaskEntry[] {
  const { ctx, c } = s;
  const b = c.batchPerGroup;
  const buffer = ctx.buffers[type];
  if (c.solverOrder === 'same_step' && recent.length > 0) {
    // Paper Alg. 1: this step's valid proposals first, back-filled from the buffer.
    const taken = ctx.rng.sample(recent, b);
    if (taken.length === b) return taken;
    const chosen = new Set(taken.map((e) => e.program + '|' + e.inputs.join(';')));
    const rest = buffer.entries.filter((e) => !chosen.has(e.program + '|' + e.inputs.join(';')));
    const fill = rest.length >= b - taken.length ? ctx.rng.sample(rest, b - taken.length) : [];
    while (taken.length + fill.length < b) fill.push(ctx.rng.choice(buffer.entries));
    return taken.concat(fill);
  }
  return buffer.sampleSolver(ctx.rng, s.t, b, c.solverSampling, c.solverWindow);
}

// ---- (1) all proposals in one call ------------------------------------------------------------------

export interface Proposal extends ProposerPrompt {
  completion: Completion;
  /** The <think>…<answer> format holds (raw proposals have none to check: always true). */
  fmt: boolean;
}

export async function propose(s: StepSetup, prompts: readonly ProposerPrompt[]): Promise<Proposal[]> {
  const { ctx, c } = s;
  const out = await generateGrouped(
    ctx.deps.policy,
    prompts.map((p) => p.prompt),
    s.raw
      ? samplingOptions(c, c.maxProposerTokens, ctx.rng.uint32(), 'propose', 1, RAW_PROPOSER_STOPS)
      : samplingOptions(c, c.maxProposerTokens, ctx.rng.uint32(), 'propose'),
  );
  return prompts.map((p, k) => {
    const completion = out[k][0];
    return { ...p, completion, fmt: s.raw || formatOk(completion.text) };
  });
}

// ---- (2) validity through the verifier; the proposals of the update ----------------------------------

export interface Judged extends Proposal {
  judged: JudgedProposal;
  /** The proposal as a task (valid ones), for estimation and insertion. */
  task: TaskEntry | null;
  /** Among the B proposals of its type that go into the update (always, unless oversampling). */
  kept: boolean;
  /** Unweighted diversity bonus of a kept proposal (0 when off). */
  diversity: number;
}

export async function judge(s: StepSetup, proposals: readonly Proposal[], drawn: Drawn): Promise<Judged[]> {
  const { ctx, c, t } = s;
  const verdicts = s.raw
    ? await validateRawProposals(
        proposals.map((p) => p.completion.text),
        ctx.deps.verifier,
        c,
      )
    : await validateProposals(
        proposals.map((p) => ({ type: p.type, response: p.completion.text, source: p.source ?? undefined })),
        ctx.deps.verifier,
        c,
        ctx.evalExpressions,
      );
  const judged: Judged[] = proposals.map((p, k) => {
    const j = verdicts[k];
    const task = j.valid
      ? { ...j.task, id: ctx.newTaskId(p.type), step: t, seed: false, origin: 'model' as const }
      : null;
    return { ...p, judged: j, task, kept: false, diversity: 0 };
  });
  for (const type of s.types) {
    const mine = judged.filter((p) => p.type === type);
    const kept = selectKept(
      mine.map((p) => p.task !== null),
      c.batchPerGroup,
    );
    mine.forEach((p, k) => (p.kept = kept[k]));
  }
  for (const p of judged) {
    if (p.kept && c.diversityCoef > 0 && p.task && p.type !== 'ind') {
      const shapes = drawn.bufferShapes[p.type] ?? new Set<string>();
      p.diversity = diversityBonus(
        c.diversityMeasure,
        p.task.program,
        shapes,
        p.refs.map((r) => r.program),
      );
    }
  }
  return judged;
}

/**
 * Oversampling (issue 10): per type, the first B valid proposals in generation order go into the update;
 * with fewer than B valid ones the earliest invalid ones fill the group, so every group has B sequences.
 */
export function selectKept(valid: readonly boolean[], b: number): boolean[] {
  const kept = valid.map(() => false);
  let n = 0;
  valid.forEach((v, k) => {
    if (v && n < b) {
      kept[k] = true;
      n++;
    }
  });
  valid.forEach((v, k) => {
    if (!v && n < b) {
      kept[k] = true;
      n++;
    }
  });
  return kept;
}

export interface SolverTask {
  type: TaskType;
  task: TaskEntry;
  prompt: EncodedPrompt;
}

/** The 3B solver tasks: drawn at the start of the step, or (same_step) from this step's kept proposals. */
export function solverTasks(s: StepSetup, drawn: Drawn, kept: readonly Judged[]): SolverTask[] {
  const byType = { ...drawn.solverTasks };
  if (s.c.solverOrder === 'same_step') {
    for (const type of s.types) {
      const recent = kept.flatMap((p) => (p.type === type && p.task ? [p.task] : []));
      byType[type] = drawSolverTasks(s, type, recent);
    }
  }
  return s.types.flatMap((type) =>
    (byType[type] ?? []).map((task) => ({
      type,
      task,
      prompt: encodePrompts(s.ctx.deps.tokenizer, [s.family.solver(task)])[0],
    })),
  );
}

// ---- (3)+(4) estimation rollouts and solver responses in one call -----------------------------------

/** A task whose learnability is estimated: a kept proposal of step t, or (improvement) one of t − 1. */
interface EstimatedTask {
  task: TaskEntry;
  prompt: string;
}

export interface RolledOut {
  /** This step's estimated proposals (kept, valid, formatted), then last step's pending ones. */
  estimatedTasks: EstimatedTask[];
  /** nEst rollouts per estimated task, task by task. */
  estimation: Completion[];
  solvers: (SolverTask & { completion: Completion })[];
}

export async function rollOut(
  s: StepSetup,
  estimated: readonly { task: TaskEntry }[],
  tasks: readonly SolverTask[],
): Promise<RolledOut> {
  const { ctx, c } = s;
  const estimatedTasks = estimated.map(({ task }) => ({ task, prompt: s.family.solver(task) }));
  const estimationEncoded = encodePrompts(
    ctx.deps.tokenizer,
    estimatedTasks.flatMap((e) => Array.from({ length: c.nEst }, () => e.prompt)),
  );
  const out = await generateGrouped(
    ctx.deps.policy,
    [...estimationEncoded, ...tasks.map((x) => x.prompt)],
    s.raw
      ? samplingOptions(c, c.maxSolverTokens, ctx.rng.uint32(), 'solve', 1, RAW_SOLVER_STOPS)
      : samplingOptions(c, c.maxSolverTokens, ctx.rng.uint32(), 'solve'),
  );
  return {
    estimatedTasks,
    estimation: out.slice(0, estimationEncoded.length).map((x) => x[0]),
    solvers: tasks.map((x, k) => ({ ...x, completion: out[estimationEncoded.length + k][0] })),
  };
}

export interface Checked {
  /** Per estimated task (same order as RolledOut.estimatedTasks): its learnability s. */
  learnability: (number | null)[];
  /** Per estimation rollout: the verifier's verdict. */
  estimation: { fmt: boolean; correct: boolean }[];
  solvers: (RolledOut['solvers'][number] & { fmt: boolean; correct: boolean; reward: number })[];
}

export async function check(s: StepSetup, r: RolledOut): Promise<Checked> {
  const { ctx, c } = s;
  const items = [
    ...r.estimation.map((comp, k) => ({
      task: r.estimatedTasks[Math.floor(k / c.nEst)].task,
      response: comp.text,
    })),
    ...r.solvers.map((x) => ({ task: x.task, response: x.completion.text })),
  ];
  const verdicts = await checkSolverResponses(items, ctx.deps.verifier, c);
  const estimation = verdicts.slice(0, r.estimation.length);
  return {
    learnability: r.estimatedTasks.map((_, k) =>
      learnability(estimation.slice(k * c.nEst, (k + 1) * c.nEst).map((v) => v.correct)),
    ),
    estimation,
    solvers: r.solvers.map((x, k) => {
      const v = verdicts[r.estimation.length + k];
      return { ...x, fmt: v.fmt, correct: v.correct, reward: solverReward(v.fmt, v.correct) };
    }),
  };
}

// ---- (5) rewards and TRR++ advantages --------------------------------------------------------------

/** A proposal with its learnability (null when not estimated: invalid, unformatted or not kept). */
export interface Estimated extends Judged {
  s: number | null;
}

/** A sequence of the update, whatever produced it. */
export interface Trained extends ScoredSequence {
  promptIds: readonly number[];
  promptText: string;
  completionIds: readonly number[];
  completionText: string;
  stopReason: string;
  record: Partial<GenerationRecord>;
}

export interface Scored {
  trained: Trained[];
  advantages: number[];
}

export function score(
  s: StepSetup,
  kept: readonly Estimated[],
  pending: readonly { q: PendingProposal; after: number | null }[],
  solvers: Checked['solvers'],
): Scored {
  const { c } = s;
  const bonus = (valid: boolean, fmt: boolean, diversity: number) =>
    valid && fmt ? c.diversityCoef * diversity : 0;
  const tierBounds = { tierHardBelow: c.tierHardBelow, tierEasyAbove: c.tierEasyAbove };
  // Under 'improvement' last step's proposals are trained now, this step's at t + 1.
  const proposers: Trained[] = s.improvement
    ? pending.map(({ q, after }) => ({
        type: q.type,
        role: 'propose',
        reward:
          improvementProposerReward(q.valid, q.fmt, q.before, after) + bonus(q.valid, q.fmt, q.diversity),
        length: q.completionIds.length,
        tier: difficultyTier(q.valid && q.fmt ? q.before : null, tierBounds),
        promptIds: q.promptIds,
        promptText: q.prompt,
        completionIds: q.completionIds,
        completionText: q.response,
        stopReason: q.stopReason,
        record: {
          kind: 'propose',
          fmt: q.fmt,
          valid: q.valid,
          ...(q.task ? { task: stripTask(q.task), learnability: after } : { invalidReason: q.invalidReason }),
          ...(c.diversityCoef > 0 ? { diversityBonus: q.diversity } : {}),
        },
      }))
    : kept.map((p) => ({
        type: p.type,
        role: 'propose',
        reward:
          baseProposerReward(c, p.task !== null, p.fmt, p.s) + bonus(p.task !== null, p.fmt, p.diversity),
        length: p.completion.ids.length,
        tier: difficultyTier(p.task && p.fmt ? p.s : null, tierBounds),
        promptIds: p.prompt.ids,
        promptText: p.prompt.text,
        completionIds: p.completion.ids,
        completionText: p.completion.text,
        stopReason: p.completion.stopReason,
        record: proposerRecord(c, p),
      }));
  const solved: Trained[] = solvers.map((x) => ({
    type: x.type,
    role: 'solve',
    reward: x.reward,
    length: x.completion.ids.length,
    tier: difficultyTier(x.task.estimatedSolveRate, tierBounds),
    promptIds: x.prompt.ids,
    promptText: x.prompt.text,
    completionIds: x.completion.ids,
    completionText: x.completion.text,
    stopReason: x.completion.stopReason,
    record: { kind: 'solve', fmt: x.fmt, taskId: x.task.id, correct: x.correct },
  }));
  const trained = [...proposers, ...solved];
  return { trained, advantages: stepAdvantages(trained, c) };
}

/** The proposer reward of a config's learnability variant ('improvement' is scored a step later). */
function baseProposerReward(c: RunConfig, valid: boolean, fmt: boolean, s: number | null): number {
  return c.learnabilityReward === 'binary'
    ? binaryProposerReward(valid, fmt, s)
    : proposerReward(valid, fmt, s, c.extremeReward);
}

/** What a proposal's sample record says of it. */
export function proposerRecord(c: RunConfig, p: Estimated): Partial<GenerationRecord> {
  const j = p.judged;
  return {
    kind: 'propose',
    fmt: p.fmt,
    valid: j.valid,
    ...(j.valid ? { task: j.task, learnability: p.s } : { invalidReason: j.reason }),
    ...(c.diversityCoef > 0 && p.kept ? { diversityBonus: p.diversity } : {}),
  };
}

function stripTask(task: TaskEntry): GenerationRecord['task'] {
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  const { id, step, seed, origin, estimatedSolveRate, ...rest } = task;
  return rest;
}

// ---- (6) one optimizer step; (7) the valid proposals into the buffers --------------------------------

/** One policy.step on the proposer and solver sequences, each tagged with its role (separate adapters). */
export async function update(s: StepSetup, scored: Scored): Promise<{ stats: StepStats; tokens: number }> {
  const weights =
    s.c.lossAggregation === 'sequence_mean'
      ? sequenceMeanWeights(scored.trained.map((x) => x.completionIds.length))
      : null;
  const sequences = scored.trained.map((x, k) => ({
    promptIds: x.promptIds,
    completionIds: x.completionIds,
    advantage: scored.advantages[k],
    role: x.role,
    ...(weights ? { weight: weights[k] } : {}),
  }));
  const stats = await s.ctx.deps.policy.step(await updateBatch(s.c, sequences, s.ctx.deps.referencePolicy));
  return { stats, tokens: sequences.reduce((a, x) => a + x.completionIds.length, 0) };
}

/**
 * Inserts the valid kept proposals (regardless of format, AZR parity) with their estimated solve rate;
 * under 'improvement' they also wait for their reward at t + 1. Returns how many the buffers took.
 */
export function insert(s: StepSetup, kept: readonly Estimated[]): number {
  const { ctx, t } = s;
  let inserted = 0;
  for (const p of kept) {
    if (!p.task) continue;
    p.task.estimatedSolveRate = p.s;
    if (ctx.buffers[p.type].insert(p.task)) inserted++;
  }
  if (s.improvement) {
    ctx.pending = kept.map((p) => ({
      type: p.type,
      step: t,
      prompt: p.prompt.text,
      promptIds: p.prompt.ids,
      response: p.completion.text,
      completionIds: p.completion.ids,
      stopReason: p.completion.stopReason,
      fmt: p.fmt,
      valid: p.task !== null,
      ...(p.judged.valid ? {} : { invalidReason: p.judged.reason }),
      ...(p.task ? { task: { ...p.task } } : {}),
      before: p.s,
      diversity: p.diversity,
    }));
  }
  return inserted;
}
