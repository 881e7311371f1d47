// Seeding (spec 4.8, after AZR 1.7): proposer rounds without gradient, starting from the identity
// triplet, until the seed set holds B·S tasks; then induction seeding over the seed programs. A shortfall
// after maxSeedRounds goes on with ≥ B tasks, is filled from templates (seedFallback, not zero-data), or
// stops with a clear error. Synthetic programs are never injected silently.
import { promptFamily } from './prompt-family.ts';
import type { Completion } from '../policy.ts';
import { TaskBuffer } from './buffers.ts';
import type { JudgedProposal } from './proposals.ts';
import { encodePrompts, generateGrouped, samplingOptions } from './generation.ts';
import { formatOk } from './format.ts';
import type { GenerationRecord, SeedResult } from './types.ts';
import type { StepContext } from './context.ts';
import { closedTemplateTask, RAW_PROPOSER_STOPS, rawProposerPrompt, rawSeedTask } from './raw-proposer.ts';
import { templateTask } from './templates.ts';
import type { TaskEntry, TaskType } from './types.ts';
import { validateProposals, validateRawProposals } from './validation.ts';

export class SeedingError extends Error {
  override name = 'SeedingError';
}

export const IDENTITY_SEED = { program: 'f(x) = x', input: 7, output: 7 } as const;
export const IDENTITY_INDUCTION_INPUTS = [-3, 0, 1, 2, 5, 7, 10, 42, 99, 100];
export const IDENTITY_INDUCTION_MESSAGE = 'returns its input unchanged';

function identityTriplet(): Omit<TaskEntry, 'id'> {
  return {
    type: 'ded',
    program: IDENTITY_SEED.program,
    arity: 1,
    inputs: [[IDENTITY_SEED.input]],
    outputs: [IDENTITY_SEED.output],
    closed: [String(IDENTITY_SEED.input)],
    binaryOps: 0,
    step: 0,
    seed: true,
    origin: 'identity_seed',
  };
}

function identityInduction(n: number): Omit<TaskEntry, 'id'> {
  const inputs = IDENTITY_INDUCTION_INPUTS.slice(0, n);
  return {
    type: 'ind',
    program: IDENTITY_SEED.program,
    arity: 1,
    inputs: inputs.map((v) => [v]),
    outputs: inputs,
    closed: inputs.map(String),
    message: IDENTITY_INDUCTION_MESSAGE,
    binaryOps: 0,
    step: 0,
    seed: true,
    origin: 'identity_seed',
  };
}

function shortfallMessage(
  what: string,
  have: number,
  target: number,
  b: number,
  rounds: number,
  seen: number,
  valid: number,
) {
  const rate = seen ? ((100 * valid) / seen).toFixed(1) : '0.0';
  return (
    `seeding ${what}: only ${have} of ${target} tasks after maxSeedRounds = ${rounds} ` +
    `(valid rate ${rate}% of ${seen} proposals), fewer than B = ${b}. Options: raise maxSeedRounds, ` +
    `set seedFallback='templates' (the run is then labelled not zero-data), or import a seed set.`
  );
}

/** A seeding proposal as a sample-table row (never trained on). */
function seedRecord(type: TaskType, prompt: string, comp: Completion, j: JudgedProposal): GenerationRecord {
  return {
    step: 0,
    kind: 'seed',
    type,
    role: 'propose',
    prompt,
    response: comp.text,
    tokens: comp.ids.length,
    stopReason: comp.stopReason,
    fmt: formatOk(comp.text),
    valid: j.valid,
    ...(j.valid ? { task: j.task } : { invalidReason: j.reason }),
    trained: false,
  };
}

export async function seedBuffers(runner: StepContext): Promise<SeedResult> {
  if (runner.config.proposerPrompts === 'raw') return seedRawBuffers(runner);
  const c = runner.config;
  const { policy, tokenizer, verifier } = runner.deps;
  const rng = runner.rng;
  const target = c.batchPerGroup * c.seedFactor;
  const log: string[] = [];
  const generations: GenerationRecord[] = [];
  let usedTemplates = false;
  runner.progress('seeding', `seeding triplets to ${target}`);

  // 1. Triplet seed set, shared by D_ded and D_abd. Seeding always deduplicates.
  const seedSet = new TaskBuffer('ded', {
    maxBuffer: Number.MAX_SAFE_INTEGER,
    bufferEviction: 'keep_oldest',
    dedupBuffer: true,
  });
  seedSet.insert({ id: runner.newTaskId('ded'), ...identityTriplet() });
  let rounds = 0;
  let seen = 0;
  let valid = 0;
  while (seedSet.size < target && rounds < c.maxSeedRounds) {
    const type: TaskType = rounds % 2 === 0 ? 'abd' : 'ded';
    rounds++;
    const prompts = encodePrompts(
      tokenizer,
      Array.from({ length: c.batchPerGroup }, () =>
        promptFamily(tokenizer, c).proposer(type as 'ded' | 'abd', seedSet.sampleRefs(rng, c.refs)),
      ),
    );
    const out = await generateGrouped(
      policy,
      prompts,
      samplingOptions(c, c.maxProposerTokens, rng.uint32(), 'propose'),
    );
    const judged = await validateProposals(
      out.map(([comp]) => ({ type, response: comp.text })),
      verifier,
      c,
      runner.evalExpressions,
    );
    judged.forEach((j, k) => {
      seen++;
      const comp = out[k][0];
      generations.push(seedRecord(type, prompts[k].text, comp, j));
      if (!j.valid) return;
      valid++;
      seedSet.insert({
        ...j.task,
        type: 'ded',
        id: runner.newTaskId('ded'),
        step: 0,
        seed: true,
        origin: 'model',
      });
    });
    roundDone(runner, 'triplets', rounds, valid, seen, seedSet.size, target);
  }
  const tripletRate = seen ? valid / seen : 0;
  if (seedSet.size < target) {
    if (c.seedFallback === 'templates') {
      log.push(
        `seeding triplets: ${seedSet.size}/${target} after ${rounds} rounds; filling from templates (not zero-data)`,
      );
      while (seedSet.size < target) {
        seedSet.insert({
          ...templateTask(rng, 'ded', 1, c.inputBound),
          id: runner.newTaskId('ded'),
          step: 0,
          seed: true,
          origin: 'template',
        });
      }
      usedTemplates = true;
    } else if (seedSet.size >= c.batchPerGroup) {
      log.push(`seeding triplets: going on with ${seedSet.size}/${target} tasks after ${rounds} rounds`);
    } else {
      throw new SeedingError(
        shortfallMessage('triplets', seedSet.size, target, c.batchPerGroup, c.maxSeedRounds, seen, valid),
      );
    }
  }
  seedSet.truncate(target);
  for (const type of ['ded', 'abd'] as const) {
    for (const e of seedSet.entries)
      runner.buffers[type].insert({ ...e, type, id: runner.newTaskId(type) }, { dedup: true });
  }

  // 2. Induction seeding over programs of the seed set.
  runner.progress('seeding', `seeding induction tasks to ${target}`);
  const ind = runner.buffers.ind;
  ind.insert({ id: runner.newTaskId('ind'), ...identityInduction(c.inductionInputs) }, { dedup: true });
  let indRounds = 0;
  let indSeen = 0;
  let indValid = 0;
  const programs = seedSet.entries;
  while (ind.size < target && indRounds < c.maxSeedRounds) {
    indRounds++;
    const sources = Array.from({ length: c.batchPerGroup }, () => rng.choice(programs));
    const prompts = encodePrompts(
      tokenizer,
      sources.map((s) => promptFamily(tokenizer, c).inductionProposer(s.program, s.arity, c.inductionInputs)),
    );
    const out = await generateGrouped(
      policy,
      prompts,
      samplingOptions(c, c.maxProposerTokens, rng.uint32(), 'propose'),
    );
    const judged = await validateProposals(
      out.map(([comp], k) => ({ type: 'ind' as const, response: comp.text, source: sources[k] })),
      verifier,
      c,
      runner.evalExpressions,
    );
    judged.forEach((j, k) => {
      indSeen++;
      const comp = out[k][0];
      generations.push(seedRecord('ind', prompts[k].text, comp, j));
      if (!j.valid) return;
      indValid++;
      ind.insert(
        { ...j.task, id: runner.newTaskId('ind'), step: 0, seed: true, origin: 'model' },
        { dedup: true },
      );
    });
    roundDone(runner, 'induction tasks', indRounds, indValid, indSeen, ind.size, target);
  }
  if (ind.size < target) {
    if (c.seedFallback === 'templates') {
      log.push(
        `seeding induction: ${ind.size}/${target} after ${indRounds} rounds; filling from templates (not zero-data)`,
      );
      while (ind.size < target) {
        ind.insert(
          {
            ...templateTask(rng, 'ind', c.inductionInputs, c.inputBound),
            id: runner.newTaskId('ind'),
            step: 0,
            seed: true,
            origin: 'template',
          },
          { dedup: true },
        );
      }
      usedTemplates = true;
    } else if (ind.size >= c.batchPerGroup) {
      log.push(`seeding induction: going on with ${ind.size}/${target} tasks after ${indRounds} rounds`);
    } else {
      throw new SeedingError(
        shortfallMessage('induction', ind.size, target, c.batchPerGroup, c.maxSeedRounds, indSeen, indValid),
      );
    }
  }
  for (const type of ['ded', 'abd', 'ind'] as const) runner.buffers[type].truncate(target);
  if (usedTemplates) runner.notZeroData = true;
  return {
    seedSize: seedSet.size,
    inductionSize: ind.size,
    rounds: { triplet: rounds, induction: indRounds },
    validRate: { triplet: tripletRate, induction: indSeen ? indValid / indSeen : 0 },
    usedTemplates,
    log,
    generations,
  };
}

/**
 * Seeding with raw proposer prompts (issue 10): only D_ded is used, its tasks are closed expressions.
 * It starts from the journal's example `5 + 3` and follows the same rounds / shortfall rules as above.
 */
async function seedRawBuffers(runner: StepContext): Promise<SeedResult> {
  const c = runner.config;
  const { policy, tokenizer, verifier } = runner.deps;
  const rng = runner.rng;
  const target = c.batchPerGroup * c.seedFactor;
  const log: string[] = [];
  const generations: GenerationRecord[] = [];
  runner.progress('seeding', `seeding closed expressions to ${target}`);
  const ded = runner.buffers.ded;
  ded.insert({ id: runner.newTaskId('ded'), ...rawSeedTask() }, { dedup: true });
  let rounds = 0;
  let seen = 0;
  let valid = 0;
  while (ded.size < target && rounds < c.maxSeedRounds) {
    rounds++;
    const prompts = encodePrompts(
      tokenizer,
      Array.from({ length: c.batchPerGroup }, () => rawProposerPrompt(ded.sampleRefs(rng, c.refs))),
    );
    const out = await generateGrouped(
      policy,
      prompts,
      samplingOptions(c, c.maxProposerTokens, rng.uint32(), 'propose', 1, RAW_PROPOSER_STOPS),
    );
    const judged = await validateRawProposals(
      out.map(([comp]) => comp.text),
      verifier,
      c,
    );
    judged.forEach((j, k) => {
      seen++;
      const comp = out[k][0];
      generations.push({
        step: 0,
        kind: 'seed',
        type: 'ded',
        role: 'propose',
        prompt: prompts[k].text,
        response: comp.text,
        tokens: comp.ids.length,
        stopReason: comp.stopReason,
        fmt: true,
        valid: j.valid,
        ...(j.valid ? { task: j.task } : { invalidReason: j.reason }),
        trained: false,
      });
      if (!j.valid) return;
      valid++;
      ded.insert(
        { ...j.task, id: runner.newTaskId('ded'), step: 0, seed: true, origin: 'model' },
        { dedup: true },
      );
    });
    roundDone(runner, 'closed expressions', rounds, valid, seen, ded.size, target);
  }
  let usedTemplates = false;
  if (ded.size < target) {
    if (c.seedFallback === 'templates') {
      log.push(
        `seeding closed expressions: ${ded.size}/${target} after ${rounds} rounds; filling from templates`,
      );
      while (ded.size < target) {
        ded.insert(
          {
            ...closedTemplateTask(rng),
            id: runner.newTaskId('ded'),
            step: 0,
            seed: true,
            origin: 'template',
          },
          { dedup: true },
        );
      }
      usedTemplates = true;
    } else if (ded.size >= c.batchPerGroup) {
      log.push(
        `seeding closed expressions: going on with ${ded.size}/${target} tasks after ${rounds} rounds`,
      );
    } else {
      throw new SeedingError(
        shortfallMessage(
          'closed expressions',
          ded.size,
          target,
          c.batchPerGroup,
          c.maxSeedRounds,
          seen,
          valid,
        ),
      );
    }
  }
  ded.truncate(target);
  if (usedTemplates) runner.notZeroData = true;
  return {
    seedSize: ded.size,
    inductionSize: 0,
    rounds: { triplet: rounds, induction: 0 },
    validRate: { triplet: seen ? valid / seen : 0, induction: 0 },
    usedTemplates,
    log,
    generations,
  };
}

/** A seeding round's progress: the round, the valid proposals so far and the buffer's fill. */
function roundDone(
  runner: StepContext,
  what: string,
  round: number,
  valid: number,
  seen: number,
  size: number,
  target: number,
): void {
  runner.progress(
    'seeding',
    `${what}: round ${round}/${runner.config.maxSeedRounds}, ${valid}/${seen} valid, ${size}/${target} tasks`,
  );
}
