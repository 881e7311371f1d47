// One real step of every preset on the real engine: a shared byte-tokenizer tiny model (f32, tied
// embeddings, so full fine-tuning runs too), the smoke preset's sizes (B, nEst, K, N, S, seeding rounds and
// template fallback, token limits; GRPO's G and prompts per step made as small), everything else the
// preset's own: browser, workshop, laptop, smoke, azr-parity (full fine-tuning) and journal-grpo (its KL
// against the base, LoRA switched off: 0 at step 1, > 0 once rewards that vary have moved the policy).
import { afterAll, describe, expect, it } from 'vitest';
import { PRESET_NAMES, PRESETS, resolveConfig, type PresetName, type RunConfig } from '../../src/config.ts';
import { Engine } from '../../src/engine/engine.ts';
import { loadModelFolder } from '../../src/model/model-folder.ts';
import { memoryFolder } from '../../src/model/model-source.ts';
import { generateTinyModel } from '../../src/model/tiny-model.ts';
import { byteTokenizerFiles } from '../../src/model/tokenizer-files.ts';
import { Runner } from '../../src/selfplay/runner.ts';
import { InlineVerifier, wireLimits } from '../../src/selfplay/verifier.ts';
import { createEngineTrainer } from '../../src/trainer/engine-trainer.ts';
import { engineShape } from '../../src/trainer/engine-shape.ts';
import { runEvalExpressions } from '../../src/trainer/session.ts';
import { getTestContext } from '../helpers/gpu.ts';

const smoke = PRESETS.smoke.overrides;
const SIZES: Partial<RunConfig> = {
  batchPerGroup: smoke.batchPerGroup,
  nEst: smoke.nEst,
  refs: smoke.refs,
  inductionInputs: smoke.inductionInputs,
  seedFactor: smoke.seedFactor,
  maxSeedRounds: smoke.maxSeedRounds,
  // An untrained model proposes nothing valid: seeding falls back to templates, as smoke's does.
  seedFallback: smoke.seedFallback,
  maxProposerTokens: smoke.maxProposerTokens,
  maxSolverTokens: smoke.maxSolverTokens,
  grpoGroupSize: 4,
  grpoPromptsPerStep: 2,
  evalSets: [],
};
/**
 * Positions per sequence (and tokens per training pass): the spec's prompts are byte tokens here (the
 * longest trained sequence of these runs is ~1,580 bytes), plus the longest completion.
 */
const MAX_SEQ_LEN = 2048;
const seconds: Record<string, number> = {};

const configOf = (preset: PresetName) => resolveConfig(preset, SIZES);

async function sharedEngine() {
  const folder = memoryFolder('presets-tiny');
  await generateTinyModel(folder, {
    seed: 17,
    tokenizerFiles: byteTokenizerFiles(),
    tokenizerKind: 'bytes',
    dtype: 'F32',
    hidden: 16,
    layers: 1,
    heads: 2,
    kvHeads: 1,
    intermediate: 32,
  });
  const model = await loadModelFolder(folder);
  const maxBatch = Math.max(...PRESET_NAMES.map((p) => engineShape(configOf(p), 4).maxBatch));
  const engine = await Engine.load(await getTestContext(), model.config, model.weights, model.tokenizer, {
    maxBatch,
    maxSeqLen: MAX_SEQ_LEN,
    maxTokensPerPass: MAX_SEQ_LEN,
  });
  return { engine, tokenizer: model.tokenizer };
}

const shared = sharedEngine();

async function runnerFor(config: RunConfig, testGrpoReward?: (text: string, reward: number) => number) {
  const { engine, tokenizer } = await shared;
  const trainer = await createEngineTrainer(engine, config);
  await trainer.trainable.reset(config.seed);
  const runner = new Runner({
    policy: trainer.policy,
    referencePolicy: trainer.referencePolicy,
    tokenizer,
    verifier: new InlineVerifier(wireLimits(config)),
    config,
    evalExpressions: runEvalExpressions(config),
    testGrpoReward,
  });
  return { trainer, runner };
}

afterAll(() => console.info('seconds per step (tiny byte model, smoke sizes):', JSON.stringify(seconds)));

describe('every preset: one real step on the engine', () => {
  for (const preset of PRESET_NAMES.filter((p) => p !== 'journal-grpo')) {
    it(
      preset,
      async () => {
        const config = configOf(preset);
        const { trainer, runner } = await runnerFor(config);
        await runner.seed();
        const t0 = performance.now();
        const r = await runner.runStep();
        seconds[preset] = Math.round((performance.now() - t0) / 100) / 10;
        expect(r.step).toBe(1);
        expect(r.metrics.trainedSequences).toBeGreaterThan(0);
        expect(Number.isFinite(r.metrics.policy.loss)).toBe(true);
        expect(Number.isFinite(r.metrics.policy.gradNorm)).toBe(true);
        const saved = await trainer.trainable.save();
        expect((saved.state as { kind?: string }).kind).toBe(config.fineTune === 'full' ? 'full' : 'lora');
        trainer.dispose();
      },
      240_000,
    );
  }

  it('journal-grpo: the KL to the base is 0 at step 1 and > 0 after an update with varying rewards', async () => {
    const config = configOf('journal-grpo');
    expect(config).toMatchObject({ klBeta: 0.1, grpoLossType: 'grpo', temperature: 0.7 });
    // Rewards that vary within each group: the advantages are not all 0, so step 1 moves the adapter.
    const { trainer, runner } = await runnerFor(config, (text) => text.length % 2);
    const t0 = performance.now();
    const first = await runner.runStep();
    seconds['journal-grpo'] = Math.round((performance.now() - t0) / 100) / 10;
    expect(first.metrics.policy.kl).toBe(0);
    const second = await runner.runStep();
    expect(second.metrics.policy.kl).toBeGreaterThan(0);
    expect(second.step).toBe(2);
    trainer.dispose();
  }, 240_000);
});
