// What one AZR step reports: a sample record for every generation (trained sequences, proposals not
// trained this step, estimation rollouts) and the step's metrics (per-group rates and advantages, buffer
// sizes, contamination, throughput, time per phase).
import type { StepStats } from '../policy.ts';
import type { Estimated, RolledOut, Checked, Scored, StepSetup } from './azr-phases.ts';
import { proposerRecord } from './azr-phases.ts';
import { groupMetrics } from './metrics.ts';
import type { GenerationRecord, GroupKey, GroupMetrics, StepResult, TaskType } from './types.ts';

export interface StepOutcome {
  proposals: readonly Estimated[];
  rolled: RolledOut;
  checked: Checked;
  scored: Scored;
  update: { stats: StepStats; tokens: number };
  inserted: number;
  timeMs: StepResult['metrics']['timeMs'];
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);

export function stepReport(s: StepSetup, o: StepOutcome): StepResult {
  const { ctx, c, t } = s;
  const { trained, advantages } = o.scored;
  const generations: GenerationRecord[] = trained.map((x, k) => ({
    step: t,
    kind: 'solve',
    type: x.type,
    role: x.role,
    prompt: x.promptText,
    response: x.completionText,
    tokens: x.completionIds.length,
    stopReason: x.stopReason,
    fmt: false,
    ...x.record,
    reward: x.reward,
    advantage: advantages[k],
    trained: true,
  }));
  // Proposals generated this step but not trained now: oversampled extras, and under 'improvement'
  // the proposals that will be trained at step t + 1.
  for (const p of o.proposals) {
    if (p.kept && !s.improvement) continue;
    generations.push({
      step: t,
      type: p.type,
      role: 'propose',
      prompt: p.prompt.text,
      response: p.completion.text,
      tokens: p.completion.ids.length,
      stopReason: p.completion.stopReason,
      fmt: false,
      ...proposerRecord(c, p),
      kind: 'propose',
      trained: false,
    });
  }
  o.rolled.estimation.forEach((comp, k) => {
    const { task, prompt } = o.rolled.estimatedTasks[Math.floor(k / c.nEst)];
    generations.push({
      step: t,
      kind: 'estimate',
      type: task.type,
      role: 'solve',
      prompt,
      response: comp.text,
      tokens: comp.ids.length,
      stopReason: comp.stopReason,
      fmt: o.checked.estimation[k].fmt,
      taskId: task.id,
      correct: o.checked.estimation[k].correct,
      trained: false,
    });
  });

  const groups: Partial<Record<GroupKey, GroupMetrics>> = {};
  const diversity: Partial<Record<TaskType, number | null>> = {};
  const indices = (type: TaskType, role: 'propose' | 'solve') =>
    trained.flatMap((x, k) => (x.type === type && x.role === role ? [k] : []));
  for (const type of s.types) {
    const idxP = indices(type, 'propose');
    const rec = idxP.map((k) => trained[k].record);
    const g = groupMetrics(
      idxP.map((k) => trained[k].reward),
      idxP.map((k) => advantages[k]),
      rec.map((r) => !!r.fmt),
      rec.map((r) => !!r.valid),
      rec.map((r) => (r.learnability === undefined ? null : r.learnability)),
    );
    // Valid and format rates count every proposal generated this step (oversampled extras included).
    const generated = o.proposals.filter((p) => p.type === type);
    g.validRate = generated.filter((p) => p.task).length / Math.max(1, generated.length);
    g.formatRate = generated.filter((p) => p.fmt).length / Math.max(1, generated.length);
    groups[`${type}:propose`] = g;
    if (c.diversityCoef > 0)
      diversity[type] = mean(rec.flatMap((r) => (r.diversityBonus === undefined ? [] : [r.diversityBonus])));
    const idxS = indices(type, 'solve');
    groups[`${type}:solve`] = groupMetrics(
      idxS.map((k) => trained[k].reward),
      idxS.map((k) => advantages[k]),
      idxS.map((k) => !!trained[k].record.fmt),
      null,
      idxS.map((k) => (trained[k].record.correct ? 1 : 0)),
    );
  }
  const validTasks = o.proposals.flatMap((p) => (p.kept && p.task ? [p.task] : []));
  const tripletTasks = validTasks.filter((x) => x.type !== 'ind');
  const evalSet = ctx.evalExpressions;
  const groupList = Object.values(groups);
  const solverCompletions = o.rolled.solvers.map((x) => x.completion);
  const completions = [...o.proposals.map((p) => p.completion), ...solverCompletions, ...o.rolled.estimation];
  return {
    step: t,
    generations,
    metrics: {
      step: t,
      mode: 'azr',
      groups,
      zeroVarianceFraction: groupList.filter((g) => g.zeroVariance).length / groupList.length,
      bufferSizes: { ded: ctx.buffers.ded.size, abd: ctx.buffers.abd.size, ind: ctx.buffers.ind.size },
      validProposals: validTasks.length,
      insertedProposals: o.inserted,
      distinctPrograms: new Set(validTasks.map((x) => x.program)).size,
      meanBinaryOps: mean(tripletTasks.map((x) => x.binaryOps)),
      meanAbsOutput: mean(tripletTasks.map((x) => Math.abs(x.outputs[0]))),
      evalContamination: evalSet ? ctx.buffers.ded.entries.filter((e) => evalSet.has(e.closed[0])).length : 0,
      generatedSequences: completions.length,
      generatedTokens: completions.reduce((a, x) => a + x.ids.length, 0),
      proposalsGenerated: o.proposals.length,
      ...(c.diversityCoef > 0 ? { diversityBonus: diversity } : {}),
      estimationRollouts: o.rolled.estimation.length,
      trainedSequences: trained.length,
      trainedTokens: o.update.tokens,
      notZeroData: ctx.notZeroData,
      policy: o.update.stats,
      timeMs: o.timeMs,
    },
  };
}
