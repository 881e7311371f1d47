// One AZR step in the normative order of spec 4.9: draw references and solver tasks from the buffers as
// they stand, (1) generate all proposals in one call, (2) validate them, (3)+(4) generate the nEst
// estimation rollouts of every valid, well-formatted proposal and the 3B solver responses in one call,
// (5) rewards and TRR++ advantages, (6) one policy.step on the 6B proposer/solver sequences (estimation
// rollouts are never trained on), (7) insert the valid proposals with step t.
//
// Experiment variants (issue 10, all off by default): oversampling (k×B proposals per type, the first B
// valid ones trained), a diversity bonus on proposer rewards, tiered baselines, binary and "solver
// improvement" learnability, and raw few-shot proposer prompts (closed-expression deduction tasks only).
// With 'improvement' the proposals of step t are trained at step t + 1, once the update of step t has
// happened and their tasks were estimated again (the pending proposals are part of the runner state).
import type { RunConfig } from '../config.ts';
import type { Completion, TrainSequence } from '../policy.ts';
import { diversityBonus, programShape } from './diversity.ts';
import {
  encodePrompts,
  generateGrouped,
  samplingOptions,
  updateBatch,
  type EncodedPrompt,
} from './generation.ts';
import { formatOk } from './format.ts';
import { promptFamily } from './prompt-family.ts';
import type { JudgedProposal } from './proposals.ts';
import { RAW_PROPOSER_STOPS, RAW_SOLVER_STOPS, rawProposerPrompt } from './raw-proposer.ts';
import { activeTaskTypes } from './buffers.ts';
import { groupMetrics } from './metrics.ts';
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
import type { Runner } from './runner.ts';
import type {
  GenerationRecord,
  GroupKey,
  GroupMetrics,
  PendingProposal,
  StepResult,
  TaskEntry,
  TaskType,
} from './types.ts';
import { checkSolverResponses, validateProposals, validateRawProposals } from './validation.ts';

interface ProposerSlot {
  type: TaskType;
  prompt: EncodedPrompt;
  source?: TaskEntry;
  refs: TaskEntry[];
  completion?: Completion;
  judged?: JudgedProposal;
  fmt?: boolean;
  /** The proposal as a task (valid ones), for estimation and insertion. */
  task?: TaskEntry;
  /** Among the B proposals of its type that go into the update (always, unless oversampling). */
  kept?: boolean;
  s?: number | null;
  diversity?: number;
  reward?: number;
}

interface SolverSlot {
  type: TaskType;
  task: TaskEntry;
  prompt: EncodedPrompt;
  completion?: Completion;
  fmt?: boolean;
  correct?: boolean;
  reward?: number;
}

/** A sequence of the update, whatever produced it. */
interface Trained extends ScoredSequence {
  promptIds: readonly number[];
  promptText: string;
  completionIds: readonly number[];
  completionText: string;
  stopReason: string;
  record: Partial<GenerationRecord>;
}

function drawSolverTasks(
  runner: Runner,
  t: number,
  type: TaskType,
  recent: readonly TaskEntry[] = [],
): TaskEntry[] {
  const c = runner.config;
  const b = c.batchPerGroup;
  if (c.solverOrder === 'same_step' && recent.length > 0) {
    // Paper Alg. 1: this step's valid proposals first, back-filled from the buffer.
    const taken = runner.rng.sample(recent, b);
    if (taken.length === b) return taken;
    const chosen = new Set(taken.map((e) => e.program + '|' + e.inputs.join(';')));
    const rest = runner.buffers[type].entries.filter(
      (e) => !chosen.has(e.program + '|' + e.inputs.join(';')),
    );
    const fill = rest.length >= b - taken.length ? runner.rng.sample(rest, b - taken.length) : [];
    while (taken.length + fill.length < b) fill.push(runner.rng.choice(runner.buffers[type].entries));
    return taken.concat(fill);
  }
  return runner.buffers[type].sampleSolver(runner.rng, t, b, c.solverSampling, c.solverWindow);
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

/** The proposer reward of a config's learnability variant ('improvement' is scored a step later). */
function baseProposerReward(c: RunConfig, valid: boolean, fmt: boolean, s: number | null): number {
  return c.learnabilityReward === 'binary'
    ? binaryProposerReward(valid, fmt, s)
    : proposerReward(valid, fmt, s, c.extremeReward);
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);

export async function runAzrStep(runner: Runner): Promise<StepResult> {
  const c = runner.config;
  const { policy, tokenizer, verifier } = runner.deps;
  const rng = runner.rng;
  const t = runner.step + 1;
  const raw = c.proposerPrompts === 'raw';
  const family = promptFamily(tokenizer, c);
  const types = activeTaskTypes(c);
  const improvement = c.learnabilityReward === 'improvement';
  const perType = c.batchPerGroup * (c.oversample ? c.oversampleFactor : 1);
  const timeMs: StepResult['metrics']['timeMs'] = {};
  let phaseStart = Date.now();
  const lap = (phase: keyof typeof timeMs) => {
    const now = Date.now();
    timeMs[phase] = (timeMs[phase] ?? 0) + (now - phaseStart);
    phaseStart = now;
  };

  // Draw everything from the buffers as they stand at the start of step t.
  runner.progress('proposing');
  const solverTasks: Partial<Record<TaskType, TaskEntry[]>> = {};
  if (c.solverOrder === 'previous_step')
    for (const type of types) solverTasks[type] = drawSolverTasks(runner, t, type);
  const inductionSources = [...runner.buffers.ded.entries, ...runner.buffers.abd.entries];
  const bufferShapes: Partial<Record<TaskType, Set<string>>> = {};
  if (c.diversityCoef > 0 && c.diversityMeasure === 'novel_shape') {
    for (const type of types)
      bufferShapes[type] = new Set(runner.buffers[type].entries.map((e) => programShape(e.program)));
  }
  const proposers: ProposerSlot[] = [];
  for (const type of types) {
    for (let j = 0; j < perType; j++) {
      if (type === 'ind') {
        const source = rng.choice(inductionSources);
        const text = family.inductionProposer(source.program, source.arity, c.inductionInputs);
        proposers.push({ type, source, refs: [], prompt: encodePrompts(tokenizer, [text])[0] });
      } else {
        const refs = runner.buffers[type].sampleRefs(rng, c.refs);
        const text = raw ? rawProposerPrompt(refs) : family.proposer(type, refs);
        proposers.push({ type, refs, prompt: encodePrompts(tokenizer, [text])[0] });
      }
    }
  }

  // (1) all proposals in one call.
  const proposed = await generateGrouped(
    policy,
    proposers.map((p) => p.prompt),
    raw
      ? samplingOptions(c, c.maxProposerTokens, rng.uint32(), 'propose', 1, RAW_PROPOSER_STOPS)
      : samplingOptions(c, c.maxProposerTokens, rng.uint32(), 'propose'),
  );
  proposers.forEach((p, k) => {
    p.completion = proposed[k][0];
    // Raw proposals have no <think> format to check (the journal's style).
    p.fmt = raw || formatOk(p.completion.text);
  });
  lap('proposing');

  // (2) validate through the verifier; choose the proposals of the update.
  runner.progress('validating');
  const judged = raw
    ? await validateRawProposals(
        proposers.map((p) => p.completion!.text),
        verifier,
        c,
      )
    : await validateProposals(
        proposers.map((p) => ({ type: p.type, response: p.completion!.text, source: p.source })),
        verifier,
        c,
        runner.evalExpressions,
      );
  proposers.forEach((p, k) => {
    p.judged = judged[k];
    const j = judged[k];
    if (j.valid) p.task = { ...j.task, id: runner.newTaskId(p.type), step: t, seed: false, origin: 'model' };
  });
  for (const type of types) {
    const mine = proposers.filter((p) => p.type === type);
    const kept = selectKept(
      mine.map((p) => !!p.task),
      c.batchPerGroup,
    );
    mine.forEach((p, k) => (p.kept = kept[k]));
  }
  const keptProposers = proposers.filter((p) => p.kept);
  for (const p of keptProposers) {
    p.diversity = 0;
    if (c.diversityCoef > 0 && p.task && p.type !== 'ind') {
      p.diversity = diversityBonus(
        c.diversityMeasure,
        p.task.program,
        bufferShapes[p.type] ?? new Set(),
        p.refs.map((r) => r.program),
      );
    }
  }
  if (c.solverOrder === 'same_step') {
    for (const type of types) {
      const recent = keptProposers.filter((p) => p.type === type && p.task).map((p) => p.task!);
      solverTasks[type] = drawSolverTasks(runner, t, type, recent);
    }
  }
  lap('validating');

  // (3)+(4) estimation rollouts (this step's proposals, and last step's again under 'improvement') and
  // solver responses in one call.
  runner.progress('estimating');
  const estimated = keptProposers.filter((p) => p.task && p.fmt);
  const pending = improvement ? runner.pending : [];
  const reestimated = pending.filter((q) => q.task && q.fmt);
  const estimationTasks = [...estimated.map((p) => p.task!), ...reestimated.map((q) => q.task!)];
  const estimationPrompts = estimationTasks.map((task) => family.solver(task));
  const solvers: SolverSlot[] = types.flatMap((type) =>
    solverTasks[type]!.map((task) => ({
      type,
      task,
      prompt: encodePrompts(tokenizer, [family.solver(task)])[0],
    })),
  );
  const estimationEncoded = encodePrompts(
    tokenizer,
    estimationPrompts.flatMap((text) => Array.from({ length: c.nEst }, () => text)),
  );
  const rollouts = await generateGrouped(
    policy,
    [...estimationEncoded, ...solvers.map((s) => s.prompt)],
    raw
      ? samplingOptions(c, c.maxSolverTokens, rng.uint32(), 'solve', 1, RAW_SOLVER_STOPS)
      : samplingOptions(c, c.maxSolverTokens, rng.uint32(), 'solve'),
  );
  const estimationOut = rollouts.slice(0, estimationEncoded.length).map((x) => x[0]);
  solvers.forEach((s, k) => (s.completion = rollouts[estimationEncoded.length + k][0]));
  lap('estimating');

  runner.progress('solving');
  const checkItems = [
    ...estimationOut.map((comp, k) => ({
      task: estimationTasks[Math.floor(k / c.nEst)],
      response: comp.text,
    })),
    ...solvers.map((s) => ({ task: s.task, response: s.completion!.text })),
  ];
  const checked = await checkSolverResponses(checkItems, verifier, c);
  const estimationChecks = checked.slice(0, estimationOut.length);
  solvers.forEach((s, k) => {
    const v = checked[estimationOut.length + k];
    s.fmt = v.fmt;
    s.correct = v.correct;
    s.reward = solverReward(v.fmt, v.correct);
  });

  // (5) rewards and advantages.
  const sOf = (k: number) =>
    learnability(estimationChecks.slice(k * c.nEst, (k + 1) * c.nEst).map((v) => v.correct));
  estimated.forEach((p, k) => (p.s = sOf(k)));
  const after = new Map<PendingProposal, number | null>();
  reestimated.forEach((q, k) => after.set(q, sOf(estimated.length + k)));
  const bonus = (valid: boolean, fmt: boolean, diversity: number) =>
    valid && fmt ? c.diversityCoef * diversity : 0;
  const tierBounds = { tierHardBelow: c.tierHardBelow, tierEasyAbove: c.tierEasyAbove };

  const trained: Trained[] = [];
  if (improvement) {
    for (const q of pending) {
      const sAfter = after.get(q) ?? null;
      const reward =
        improvementProposerReward(q.valid, q.fmt, q.before, sAfter) + bonus(q.valid, q.fmt, q.diversity);
      trained.push({
        type: q.type,
        role: 'propose',
        reward,
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
          ...(q.task
            ? { task: stripTask(q.task), learnability: sAfter }
            : { invalidReason: q.invalidReason }),
          ...(c.diversityCoef > 0 ? { diversityBonus: q.diversity } : {}),
        },
      });
    }
  } else {
    for (const p of keptProposers) {
      p.reward =
        baseProposerReward(c, !!p.task, !!p.fmt, p.s ?? null) + bonus(!!p.task, !!p.fmt, p.diversity ?? 0);
    }
  }
  const proposerRecord = (p: ProposerSlot): Partial<GenerationRecord> => {
    const j = p.judged!;
    return {
      kind: 'propose',
      fmt: !!p.fmt,
      valid: j.valid,
      ...(j.valid ? { task: j.task, learnability: p.s ?? null } : { invalidReason: j.reason }),
      ...(c.diversityCoef > 0 && p.kept ? { diversityBonus: p.diversity ?? 0 } : {}),
    };
  };
  if (!improvement) {
    for (const p of keptProposers) {
      trained.push({
        type: p.type,
        role: 'propose',
        reward: p.reward!,
        length: p.completion!.ids.length,
        tier: difficultyTier(p.task && p.fmt ? (p.s ?? null) : null, tierBounds),
        promptIds: p.prompt.ids,
        promptText: p.prompt.text,
        completionIds: p.completion!.ids,
        completionText: p.completion!.text,
        stopReason: p.completion!.stopReason,
        record: proposerRecord(p),
      });
    }
  }
  for (const s of solvers) {
    trained.push({
      type: s.type,
      role: 'solve',
      reward: s.reward!,
      length: s.completion!.ids.length,
      tier: difficultyTier(s.task.estimatedSolveRate, tierBounds),
      promptIds: s.prompt.ids,
      promptText: s.prompt.text,
      completionIds: s.completion!.ids,
      completionText: s.completion!.text,
      stopReason: s.completion!.stopReason,
      record: { kind: 'solve', fmt: !!s.fmt, taskId: s.task.id, correct: s.correct },
    });
  }
  const advantages = stepAdvantages(trained, c);
  lap('solving');

  // (6) one optimizer step on the proposer and solver sequences, each tagged with its role (the engine
  // routes them to separate adapters when separateAdapters is on).
  runner.progress('updating');
  const sequences: TrainSequence[] = trained.map((s, k) => ({
    promptIds: s.promptIds,
    completionIds: s.completionIds,
    advantage: advantages[k],
    role: s.role,
  }));
  const stats = await policy.step(await updateBatch(c, sequences, runner.deps.referencePolicy));
  lap('updating');

  // (7) insert the valid proposals of the update (regardless of format, AZR parity).
  let inserted = 0;
  for (const p of keptProposers) {
    if (!p.task) continue;
    p.task.estimatedSolveRate = p.s ?? null;
    if (runner.buffers[p.type].insert(p.task)) inserted++;
  }
  if (improvement) {
    runner.pending = keptProposers.map((p) => ({
      type: p.type,
      step: t,
      prompt: p.prompt.text,
      promptIds: p.prompt.ids,
      response: p.completion!.text,
      completionIds: p.completion!.ids,
      stopReason: p.completion!.stopReason,
      fmt: !!p.fmt,
      valid: !!p.task,
      ...(p.judged!.valid ? {} : { invalidReason: p.judged!.reason }),
      ...(p.task ? { task: { ...p.task } } : {}),
      before: p.s ?? null,
      diversity: p.diversity ?? 0,
    }));
  }

  // Records and metrics.
  const generations: GenerationRecord[] = [];
  trained.forEach((s, k) => {
    generations.push({
      step: t,
      kind: 'solve',
      type: s.type,
      role: s.role,
      prompt: s.promptText,
      response: s.completionText,
      tokens: s.completionIds.length,
      stopReason: s.stopReason,
      fmt: false,
      ...s.record,
      reward: s.reward,
      advantage: advantages[k],
      trained: true,
    });
  });
  // Proposals generated this step but not trained now: oversampled extras, and under 'improvement'
  // the proposals that will be trained at step t + 1.
  for (const p of proposers) {
    if (p.kept && !improvement) continue;
    generations.push({
      step: t,
      type: p.type,
      role: 'propose',
      prompt: p.prompt.text,
      response: p.completion!.text,
      tokens: p.completion!.ids.length,
      stopReason: p.completion!.stopReason,
      fmt: false,
      ...proposerRecord(p),
      kind: 'propose',
      trained: false,
    });
  }
  estimationOut.forEach((comp, k) => {
    const task = estimationTasks[Math.floor(k / c.nEst)];
    generations.push({
      step: t,
      kind: 'estimate',
      type: task.type,
      role: 'solve',
      prompt: estimationPrompts[Math.floor(k / c.nEst)],
      response: comp.text,
      tokens: comp.ids.length,
      stopReason: comp.stopReason,
      fmt: estimationChecks[k].fmt,
      taskId: task.id,
      correct: estimationChecks[k].correct,
      trained: false,
    });
  });

  const groups: Partial<Record<GroupKey, GroupMetrics>> = {};
  const diversity: Partial<Record<TaskType, number | null>> = {};
  for (const type of types) {
    const idxP = trained
      .map((_, k) => k)
      .filter((k) => trained[k].type === type && trained[k].role === 'propose');
    const rec = idxP.map((k) => trained[k].record);
    const g = groupMetrics(
      idxP.map((k) => trained[k].reward),
      idxP.map((k) => advantages[k]),
      rec.map((r) => !!r.fmt),
      rec.map((r) => !!r.valid),
      rec.map((r) => (r.learnability === undefined ? null : r.learnability)),
    );
    // Valid and format rates count every proposal generated this step (oversampled extras included).
    const generated = proposers.filter((p) => p.type === type);
    g.validRate = generated.filter((p) => p.task).length / Math.max(1, generated.length);
    g.formatRate = generated.filter((p) => p.fmt).length / Math.max(1, generated.length);
    groups[`${type}:propose`] = g;
    if (c.diversityCoef > 0) {
      diversity[type] = mean(rec.filter((r) => r.diversityBonus !== undefined).map((r) => r.diversityBonus!));
    }
    const idxS = trained
      .map((_, k) => k)
      .filter((k) => trained[k].type === type && trained[k].role === 'solve');
    groups[`${type}:solve`] = groupMetrics(
      idxS.map((k) => trained[k].reward),
      idxS.map((k) => advantages[k]),
      idxS.map((k) => !!trained[k].record.fmt),
      null,
      idxS.map((k) => (trained[k].record.correct ? 1 : 0)),
    );
  }
  const validTasks = keptProposers.filter((p) => p.task).map((p) => p.task!);
  const tripletTasks = validTasks.filter((x) => x.type !== 'ind');
  const evalSet = runner.evalExpressions;
  const groupList = Object.values(groups);
  return {
    step: t,
    generations,
    metrics: {
      step: t,
      mode: 'azr',
      groups,
      zeroVarianceFraction: groupList.filter((g) => g.zeroVariance).length / groupList.length,
      bufferSizes: {
        ded: runner.buffers.ded.size,
        abd: runner.buffers.abd.size,
        ind: runner.buffers.ind.size,
      },
      validProposals: validTasks.length,
      insertedProposals: inserted,
      distinctPrograms: new Set(validTasks.map((x) => x.program)).size,
      meanBinaryOps: mean(tripletTasks.map((x) => x.binaryOps)),
      meanAbsOutput: mean(tripletTasks.map((x) => Math.abs(x.outputs[0]))),
      evalContamination: evalSet
        ? runner.buffers.ded.entries.filter((e) => evalSet.has(e.closed[0])).length
        : 0,
      generatedSequences: proposers.length + estimationOut.length + solvers.length,
      generatedTokens:
        [...proposers, ...solvers].reduce((a, x) => a + (x.completion?.ids.length ?? 0), 0) +
        estimationOut.reduce((a, x) => a + x.ids.length, 0),
      proposalsGenerated: proposers.length,
      ...(c.diversityCoef > 0 ? { diversityBonus: diversity } : {}),
      estimationRollouts: estimationOut.length,
      trainedSequences: sequences.length,
      trainedTokens: sequences.reduce((a, s) => a + s.completionIds.length, 0),
      notZeroData: runner.notZeroData,
      policy: stats,
      timeMs,
    },
  };
}

function stripTask(task: TaskEntry): GenerationRecord['task'] {
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  const { id, step, seed, origin, estimatedSolveRate, ...rest } = task;
  return rest;
}
