// Imitation mode (mode = 'imitation', `tabzero pretrain`): one step = a batch of verifier-made curriculum
// records (curriculum.ts) trained with the token-mean negative log-likelihood of their completions. The
// loss is the policy-gradient loss of spec 4.7 with advantage 1 on every sequence (ρ ≡ 1, no KL, no
// entropy), whose gradient is exactly that of the NLL; the reported loss is −mean logπ before the update.
// Every draw comes from the runner's rng, so a resumed run sees the same records.
import type { TrainSequence } from '../policy.ts';
import { Curriculum, type CurriculumRecord } from './curriculum.ts';
import type { GenerationRecord, GroupKey, StepResult } from './types.ts';
import type { StepContext } from './context.ts';
import { wireLimits } from './verifier.ts';
import { toArithLimits } from './verifier-protocol.ts';
import { renderWorkshopPrompt } from './workshop-prompts.ts';

/** Ends a raw (ded-solve) completion, as the eval's raw generation stops on it (Qwen2's and the byte model's). */
const END_OF_TEXT = '<|endoftext|>';

/** Curriculum roles as the step metrics' group keys. */
export function roleGroup(role: CurriculumRecord['role']): GroupKey {
  const [type, r] = role.split('_') as [GroupKey extends `${infer T}:${string}` ? T : never, string];
  return `${type}:${r === 'propose' ? 'propose' : 'solve'}`;
}

/** The prompt text and token ids a record trains on (the raw ded-solve completion ends with end-of-text). */
export function encodeRecord(
  runner: Pick<StepContext, 'deps'>,
  r: CurriculumRecord,
): { prompt: string; promptIds: number[]; completionIds: number[] } {
  const { tokenizer } = runner.deps;
  const prompt = r.chat ? renderWorkshopPrompt(tokenizer, r.prompt) : r.prompt;
  const completionIds = tokenizer.encode(r.chat ? r.completion : r.completion + END_OF_TEXT);
  return { prompt, promptIds: tokenizer.encode(prompt), completionIds };
}

export function curriculumFor(runner: StepContext): Curriculum {
  const c = runner.config;
  return new Curriculum(runner.rng, {
    bounds: c,
    limits: toArithLimits(wireLimits(c)),
    excluded: runner.evalExpressions,
  });
}

export async function runImitationStep(runner: StepContext): Promise<StepResult> {
  const t = runner.step + 1;
  const c = runner.config;
  if (c.promptFamily !== 'workshop') {
    throw new Error("mode 'imitation' writes workshop-family records: set promptFamily = workshop");
  }
  const records = curriculumFor(runner).batch(c.imitationBatch);
  const encoded = records.map((r) => encodeRecord(runner, r));
  const sequences: TrainSequence[] = encoded.map((e) => ({
    promptIds: e.promptIds,
    completionIds: e.completionIds,
    advantage: 1,
  }));
  runner.progress('updating');
  const t0 = performance.now();
  const stats = await runner.deps.policy.step({ sequences, clipEps: c.clipEps, entropyCoef: 0, klBeta: 0 });
  const updateMs = performance.now() - t0;
  const groups: StepResult['metrics']['groups'] = {};
  for (const r of records) {
    const key = roleGroup(r.role);
    const g = (groups[key] ??= {
      count: 0,
      meanReward: 0,
      validRate: null,
      formatRate: 1,
      solveRate: null,
      advMean: 1,
      advStd: 0,
      zeroVariance: true,
    });
    g.count++;
  }
  const trainedTokens = sequences.reduce((n, s) => n + s.completionIds.length, 0);
  const generations: GenerationRecord[] = records.slice(0, 4).map((r, k) => ({
    step: t,
    kind: r.role.endsWith('propose') ? 'propose' : 'solve',
    type: roleGroup(r.role).split(':')[0] as GenerationRecord['type'],
    role: r.role.endsWith('propose') ? 'propose' : 'solve',
    prompt: encoded[k].prompt,
    response: r.completion,
    tokens: encoded[k].completionIds.length,
    stopReason: 'imitation',
    fmt: true,
    trained: true,
  }));
  return {
    step: t,
    generations,
    metrics: {
      step: t,
      mode: 'imitation',
      groups,
      zeroVarianceFraction: 0,
      bufferSizes: { ded: 0, abd: 0, ind: 0 },
      validProposals: 0,
      insertedProposals: 0,
      distinctPrograms: 0,
      meanBinaryOps: null,
      meanAbsOutput: null,
      evalContamination: records.filter((r) => r.closed && runner.evalExpressions.has(r.closed)).length,
      generatedSequences: 0,
      generatedTokens: 0,
      estimationRollouts: 0,
      trainedSequences: sequences.length,
      trainedTokens,
      notZeroData: true,
      imitationLoss: stats.meanLogprob === undefined ? null : -stats.meanLogprob,
      policy: stats,
      timeMs: { updating: updateMs },
    },
  };
}
