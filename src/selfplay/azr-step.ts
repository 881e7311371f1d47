// One AZR step in the normative order of spec 4.9: draw references and solver tasks from the buffers as
// they stand, (1) generate all 3B proposals in one call, (2) validate them, (3)+(4) generate the nEst
// estimation rollouts of every valid, well-formatted proposal and the 3B solver responses in one call,
// (5) rewards and TRR++ advantages, (6) one policy.step on the 6B proposer/solver sequences (estimation
// rollouts are never trained on), (7) insert the valid proposals with step t.
import type { Completion, TrainSequence } from '../policy.ts';
import { encodePrompts, generateGrouped, samplingOptions, type EncodedPrompt } from './generation.ts';
import { formatOk } from './format.ts';
import { inductionProposerPrompt, proposerPrompt, renderPrompt, solverPromptFor } from './prompts.ts';
import type { JudgedProposal } from './proposals.ts';
import {
  groupMetrics,
  type GenerationRecord,
  type GroupKey,
  type GroupMetrics,
  type StepResult,
} from './records.ts';
import {
  BASELINE_GROUPINGS,
  groupedAdvantages,
  learnability,
  proposerReward,
  solverReward,
  type ScoredSequence,
} from './rewards.ts';
import type { Runner } from './runner.ts';
import { TASK_TYPES, type Role, type TaskEntry, type TaskType } from './types.ts';
import { checkSolverResponses, validateProposals } from './validation.ts';

interface ProposerSlot {
  type: TaskType;
  prompt: EncodedPrompt;
  source?: TaskEntry;
  completion?: Completion;
  judged?: JudgedProposal;
  fmt?: boolean;
  /** The proposal as a task (valid ones), for estimation and insertion. */
  task?: TaskEntry;
  s?: number | null;
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

export async function runAzrStep(runner: Runner): Promise<StepResult> {
  const c = runner.config;
  const { policy, tokenizer, verifier } = runner.deps;
  const rng = runner.rng;
  const t = runner.step + 1;
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
    for (const type of TASK_TYPES) solverTasks[type] = drawSolverTasks(runner, t, type);
  const inductionSources = [...runner.buffers.ded.entries, ...runner.buffers.abd.entries];
  const proposers: ProposerSlot[] = [];
  for (const type of TASK_TYPES) {
    for (let j = 0; j < c.batchPerGroup; j++) {
      if (type === 'ind') {
        const source = rng.choice(inductionSources);
        const text = renderPrompt(
          tokenizer,
          inductionProposerPrompt(source.program, source.arity, c.inductionInputs),
        );
        proposers.push({ type, source, prompt: encodePrompts(tokenizer, [text])[0] });
      } else {
        const text = renderPrompt(
          tokenizer,
          proposerPrompt(type, runner.buffers[type].sampleRefs(rng, c.refs)),
        );
        proposers.push({ type, prompt: encodePrompts(tokenizer, [text])[0] });
      }
    }
  }

  // (1) all proposals in one call.
  const proposed = await generateGrouped(
    policy,
    proposers.map((p) => p.prompt),
    samplingOptions(c, c.maxProposerTokens, rng.uint32()),
  );
  proposers.forEach((p, k) => {
    p.completion = proposed[k][0];
    p.fmt = formatOk(p.completion.text);
  });
  lap('proposing');

  // (2) validate through the verifier.
  runner.progress('validating');
  const judged = await validateProposals(
    proposers.map((p) => ({ type: p.type, response: p.completion!.text, source: p.source })),
    verifier,
    c,
  );
  proposers.forEach((p, k) => {
    p.judged = judged[k];
    const j = judged[k];
    if (j.valid) p.task = { ...j.task, id: runner.newTaskId(p.type), step: t, seed: false, origin: 'model' };
  });
  if (c.solverOrder === 'same_step') {
    for (const type of TASK_TYPES) {
      const recent = proposers.filter((p) => p.type === type && p.task).map((p) => p.task!);
      solverTasks[type] = drawSolverTasks(runner, t, type, recent);
    }
  }
  lap('validating');

  // (3)+(4) estimation rollouts and solver responses in one call.
  runner.progress('estimating');
  const estimated = proposers.filter((p) => p.task && p.fmt);
  const estimationPrompts = estimated.map((p) =>
    renderPrompt(tokenizer, solverPromptFor(p.task!, c.deductionView)),
  );
  const solvers: SolverSlot[] = TASK_TYPES.flatMap((type) =>
    solverTasks[type]!.map((task) => ({
      type,
      task,
      prompt: encodePrompts(tokenizer, [renderPrompt(tokenizer, solverPromptFor(task, c.deductionView))])[0],
    })),
  );
  const estimationEncoded = encodePrompts(
    tokenizer,
    estimationPrompts.flatMap((text) => Array.from({ length: c.nEst }, () => text)),
  );
  const rollouts = await generateGrouped(
    policy,
    [...estimationEncoded, ...solvers.map((s) => s.prompt)],
    samplingOptions(c, c.maxSolverTokens, rng.uint32()),
  );
  const estimationOut = rollouts.slice(0, estimationEncoded.length).map((x) => x[0]);
  solvers.forEach((s, k) => (s.completion = rollouts[estimationEncoded.length + k][0]));
  lap('estimating');

  runner.progress('solving');
  const checkItems = [
    ...estimationOut.map((comp, k) => ({
      task: estimated[Math.floor(k / c.nEst)].task!,
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
  estimated.forEach((p, k) => {
    p.s = learnability(estimationChecks.slice(k * c.nEst, (k + 1) * c.nEst).map((v) => v.correct));
  });
  for (const p of proposers) p.reward = proposerReward(!!p.task, !!p.fmt, p.s ?? null, c.extremeReward);
  const scored: (ScoredSequence & { slot: ProposerSlot | SolverSlot })[] = [
    ...proposers.map((p) => ({
      type: p.type,
      role: 'propose' as Role,
      reward: p.reward!,
      length: p.completion!.ids.length,
      slot: p,
    })),
    ...solvers.map((s) => ({
      type: s.type,
      role: 'solve' as Role,
      reward: s.reward!,
      length: s.completion!.ids.length,
      slot: s,
    })),
  ];
  const advantages = groupedAdvantages(scored, BASELINE_GROUPINGS[c.baselines], c.advNorm);
  lap('solving');

  // (6) one optimizer step on all 6B sequences.
  runner.progress('updating');
  const sequences: TrainSequence[] = scored.map((s, k) => ({
    promptIds: s.slot.prompt.ids,
    completionIds: s.slot.completion!.ids,
    advantage: advantages[k],
    role: s.role,
  }));
  const batch = { sequences, clipEps: c.clipEps, entropyCoef: c.entropyCoef, klBeta: c.klBeta };
  if (c.klBeta > 0 && runner.deps.referencePolicy) {
    const ref = await runner.deps.referencePolicy.logprobs(batch);
    sequences.forEach((s, k) => (s.refLogprobs = ref[k]));
  }
  const stats = await policy.step(batch);
  lap('updating');

  // (7) insert the valid proposals (regardless of format, AZR parity).
  let inserted = 0;
  for (const p of proposers) if (p.task && runner.buffers[p.type].insert(p.task)) inserted++;

  // Records and metrics.
  const generations: GenerationRecord[] = [];
  scored.forEach((s, k) => {
    const comp = s.slot.completion!;
    const base = {
      step: t,
      type: s.type,
      role: s.role,
      prompt: s.slot.prompt.text,
      response: comp.text,
      tokens: comp.ids.length,
      stopReason: comp.stopReason,
      reward: s.reward,
      advantage: advantages[k],
      trained: true,
    };
    if (s.role === 'propose') {
      const p = s.slot as ProposerSlot;
      const j = p.judged!;
      generations.push({
        ...base,
        kind: 'propose',
        fmt: !!p.fmt,
        valid: j.valid,
        ...(j.valid ? { task: j.task, learnability: p.s ?? null } : { invalidReason: j.reason }),
      });
    } else {
      const sv = s.slot as SolverSlot;
      generations.push({ ...base, kind: 'solve', fmt: !!sv.fmt, taskId: sv.task.id, correct: sv.correct });
    }
  });
  estimationOut.forEach((comp, k) => {
    const p = estimated[Math.floor(k / c.nEst)];
    generations.push({
      step: t,
      kind: 'estimate',
      type: p.type,
      role: 'solve',
      prompt: estimationPrompts[Math.floor(k / c.nEst)],
      response: comp.text,
      tokens: comp.ids.length,
      stopReason: comp.stopReason,
      fmt: estimationChecks[k].fmt,
      taskId: p.task!.id,
      correct: estimationChecks[k].correct,
      trained: false,
    });
  });

  const groups: Partial<Record<GroupKey, GroupMetrics>> = {};
  for (const type of TASK_TYPES) {
    const idxP = scored
      .map((s, k) => k)
      .filter((k) => scored[k].type === type && scored[k].role === 'propose');
    const ps = idxP.map((k) => scored[k].slot as ProposerSlot);
    groups[`${type}:propose`] = groupMetrics(
      ps.map((p) => p.reward!),
      idxP.map((k) => advantages[k]),
      ps.map((p) => !!p.fmt),
      ps.map((p) => !!p.task),
      ps.map((p) => (p.s === undefined ? null : p.s)),
    );
    const idxS = scored.map((s, k) => k).filter((k) => scored[k].type === type && scored[k].role === 'solve');
    const ss = idxS.map((k) => scored[k].slot as SolverSlot);
    groups[`${type}:solve`] = groupMetrics(
      ss.map((s) => s.reward!),
      idxS.map((k) => advantages[k]),
      ss.map((s) => !!s.fmt),
      null,
      ss.map((s) => (s.correct ? 1 : 0)),
    );
  }
  const validTasks = proposers.filter((p) => p.task).map((p) => p.task!);
  const tripletTasks = validTasks.filter((x) => x.type !== 'ind');
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);
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
      estimationRollouts: estimationOut.length,
      trainedSequences: sequences.length,
      trainedTokens: sequences.reduce((a, s) => a + s.completionIds.length, 0),
      notZeroData: runner.notZeroData,
      policy: stats,
      timeMs,
    },
  };
}
