// GRPO baseline mode (spec 4.11, section 7): a deterministic synthetic training set of closed expressions
// that excludes every eval prompt, G completions per prompt, group-relative advantages (TRL), optional
// k3 KL against a frozen reference, one policy.step per step.
import type { EvalItem, RunConfig } from '../config.ts';
import type { TrainSequence } from '../policy.ts';
import { generateTierItems } from './evalsets.ts';
import { extractBody, formatOk, rawPrediction } from './format.ts';
import {
  encodePrompts,
  generateGrouped,
  samplingOptions,
  sequenceMeanWeights,
  updateBatch,
} from './generation.ts';
import { deductionSolverPrompt, renderPrompt } from './prompts.ts';
import { groupMetrics } from './metrics.ts';
import type { GenerationRecord, StepResult } from './types.ts';
import { grpoAdvantages, solverReward } from './rewards.ts';
import type { StepContext } from './context.ts';
import { parseDeductionAnswer } from './solver.ts';

/** The GRPO training set (spec 4.11): tier items excluding every eval prompt. */
export function generateGrpoTrainSet(size: number, seed: number): EvalItem[] {
  return generateTierItems(size, seed, 'grpo');
}

/**
 * Reward of one GRPO completion; also returns whether it was well formatted and correct. "Correct" is the
 * eval's (scoreCompletion): a raw answer must be the answer's own digits ("07" and "-0" are not 7 and 0),
 * a chat answer is parsed as a number.
 */
export function grpoReward(
  c: Pick<RunConfig, 'grpoPromptFormat' | 'grpoReward'>,
  item: EvalItem,
  text: string,
): { reward: number; fmt: boolean; correct: boolean } {
  let predicted: string | null;
  let fmt: boolean;
  if (c.grpoPromptFormat === 'raw') {
    predicted = rawPrediction(text);
    fmt = predicted !== null;
  } else {
    fmt = formatOk(text);
    predicted = parseDeductionAnswer(extractBody(text))?.toString() ?? null;
  }
  const prediction = predicted === null ? null : BigInt(predicted);
  const answer = BigInt(item.answer);
  const exact = predicted === item.answer;
  const correct = exact && (c.grpoPromptFormat === 'raw' || fmt);
  switch (c.grpoReward) {
    case 'azr':
      return { reward: solverReward(fmt, exact), fmt, correct };
    case 'binary':
    case 'raw':
      return { reward: correct ? 1 : 0, fmt, correct };
    case 'shaped': {
      // Distance shaping: 1 when exact, else up to 0.5 falling linearly with the relative error.
      if (exact) return { reward: 1, fmt, correct };
      if (prediction === null) return { reward: 0, fmt, correct };
      const err = Math.abs(Number(prediction - answer)) / Math.max(1, Math.abs(Number(answer)));
      return { reward: 0.5 * Math.max(0, 1 - err), fmt, correct };
    }
  }
}

/**
 * Per-sequence loss weights of GRPO's aggregation: 'grpo' (TRL's loss_type='grpo') is the mean over
 * sequences of each sequence's token mean (sequenceMeanWeights); 'dapo' is the global token mean itself
 * (no weights).
 */
export function grpoSequenceWeights(
  lossType: RunConfig['grpoLossType'],
  lengths: readonly number[],
): number[] | null {
  return lossType === 'dapo' ? null : sequenceMeanWeights(lengths);
}

export function grpoPromptText(runner: StepContext, item: EvalItem): string {
  if (runner.config.grpoPromptFormat === 'raw') return item.prompt;
  return renderPrompt(
    runner.deps.tokenizer,
    deductionSolverPrompt('expression', { program: '', input: [], closed: item.expression }),
  );
}

export async function runGrpoStep(runner: StepContext): Promise<StepResult> {
  const c = runner.config;
  const { policy, tokenizer } = runner.deps;
  const t = runner.step + 1;
  const started = Date.now();
  const data = runner.grpoTrainSet();

  runner.progress('solving');
  const items = runner.rng.sample(data, c.grpoPromptsPerStep);
  const prompts = encodePrompts(
    tokenizer,
    items.map((it) => grpoPromptText(runner, it)),
  );
  const stops = c.grpoPromptFormat === 'chat' ? undefined : [];
  const out = await generateGrouped(
    policy,
    prompts,
    samplingOptions(c, c.maxSolverTokens, runner.rng.uint32(), 'solve', c.grpoGroupSize, stops),
  );
  const generatedAt = Date.now();
  const flat = out.flatMap((comps, i) => comps.map((comp) => ({ item: items[i], prompt: prompts[i], comp })));
  const scored = flat.map((f) => grpoReward(c, f.item, f.comp.text));
  const hook = runner.deps.testGrpoReward;
  const rewards = scored.map((s, k) => (hook ? hook(flat[k].comp.text, s.reward) : s.reward));
  const advantages = grpoAdvantages(rewards, c.grpoGroupSize, c.grpoScaleRewards);
  const weights = grpoSequenceWeights(
    c.grpoLossType,
    flat.map((f) => f.comp.ids.length),
  );

  runner.progress('updating');
  const sequences: TrainSequence[] = flat.map((f, k) => ({
    promptIds: f.prompt.ids,
    completionIds: f.comp.ids,
    advantage: advantages[k],
    role: 'solve',
    ...(weights ? { weight: weights[k] } : {}),
  }));
  const stats = await policy.step(await updateBatch(c, sequences, runner.deps.referencePolicy));

  const generations: GenerationRecord[] = flat.map((f, k) => ({
    step: t,
    kind: 'grpo',
    type: 'ded',
    role: 'solve',
    prompt: f.prompt.text,
    response: f.comp.text,
    tokens: f.comp.ids.length,
    stopReason: f.comp.stopReason,
    fmt: scored[k].fmt,
    taskId: f.item.id,
    correct: scored[k].correct,
    reward: rewards[k],
    advantage: advantages[k],
    trained: true,
  }));
  const g = groupMetrics(
    rewards,
    advantages,
    scored.map((s) => s.fmt),
    null,
    scored.map((s) => (s.correct ? 1 : 0)),
  );
  let zeroGroups = 0;
  for (let k = 0; k < rewards.length; k += c.grpoGroupSize) {
    const grp = rewards.slice(k, k + c.grpoGroupSize);
    if (grp.every((r) => r === grp[0])) zeroGroups++;
  }
  return {
    step: t,
    generations,
    metrics: {
      step: t,
      mode: 'grpo',
      groups: { 'ded:solve': g },
      zeroVarianceFraction: zeroGroups / Math.max(1, items.length),
      bufferSizes: { ded: 0, abd: 0, ind: 0 },
      validProposals: 0,
      insertedProposals: 0,
      distinctPrograms: 0,
      meanBinaryOps: null,
      meanAbsOutput: null,
      evalContamination: 0,
      generatedSequences: flat.length,
      generatedTokens: flat.reduce((a, x) => a + x.comp.ids.length, 0),
      estimationRollouts: 0,
      trainedSequences: sequences.length,
      trainedTokens: sequences.reduce((a, s) => a + s.completionIds.length, 0),
      notZeroData: false,
      policy: stats,
      timeMs: { solving: generatedAt - started, updating: Date.now() - generatedAt },
    },
  };
}
