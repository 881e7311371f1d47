// The shipped workshop model (public/models/tabzero-workshop, `npm run build:workshop-model`): the
// recipe's first pretraining steps from its seed reproduce the losses in the model card; the shipped
// weights match the card's hash, and their greedy raw predictions on the first arith_eval_200 items equal
// the card's; one `workshop` self-play step runs from them.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveConfig, type RunConfig } from '../../src/config.ts';
import { Engine } from '../../src/engine/engine.ts';
import { loadModelFolder } from '../../src/model/model-folder.ts';
import { memoryFolder } from '../../src/model/model-source.ts';
import { nodeFolderSource } from '../../src/model/node-folder.ts';
import { Sha256 } from '../../src/model/sha256.ts';
import { generateTinyModel } from '../../src/model/tiny-model.ts';
import type { Tokenizer } from '../../src/policy.ts';
import { evaluate } from '../../src/selfplay/evaluate.ts';
import { Runner } from '../../src/selfplay/runner.ts';
import { InlineVerifier, wireLimits } from '../../src/selfplay/verifier.ts';
import { createEngineTrainer } from '../../src/trainer/engine-trainer.ts';
import { engineShape } from '../../src/trainer/engine-shape.ts';
import { runEvalExpressions } from '../../src/trainer/session.ts';
import { recipeConfig, recipeModelOptions, WORKSHOP_MODEL_PATH } from '../../src/trainer/workshop-recipe.ts';
import { getTestContext } from '../helpers/gpu.ts';

interface Card {
  weightsSha256: string;
  firstLosses: number[];
  predictions: { id: string; prediction: string | null; completion: string }[];
  run: { evalMaxNewRaw: number };
}
const card = JSON.parse(readFileSync(join(WORKSHOP_MODEL_PATH, 'tabzero-card.json'), 'utf8')) as Card;

/**
 * Steps replayed: all lie in the recipe's warm-up, so the learning rate does not depend on totalSteps.
 * Each is 8–15 s of lavapipe (48 full fine-tuning records), so the gpu layer replays 3 of the card's 20.
 */
const REPLAYED_STEPS = 3;
/** f32 on lavapipe, the same kernels and batch shapes as the build: the losses agree to rounding. */
const LOSS_TOLERANCE = 1e-5;

async function engineFor(
  folder: Parameters<typeof loadModelFolder>[0],
  shape: { maxBatch: number; maxSeqLen: number },
) {
  const model = await loadModelFolder(folder);
  const engine = await Engine.load(
    await getTestContext(),
    model.config,
    model.weights,
    model.tokenizer,
    shape,
  );
  return { model, engine };
}

/** A Runner on a freshly reset trainer; `evalsOf` names the eval sets whose items are kept out. */
async function freshRunner(engine: Engine, tokenizer: Tokenizer, config: RunConfig, evalsOf: RunConfig) {
  const trainer = await createEngineTrainer(engine, config);
  await trainer.trainable.reset(config.seed);
  return new Runner({
    policy: trainer.policy,
    tokenizer,
    verifier: new InlineVerifier(wireLimits(config)),
    config,
    evalExpressions: runEvalExpressions(evalsOf),
  });
}

describe('workshop model', () => {
  it("the recipe's first pretraining steps reproduce the card's losses", async () => {
    const folder = memoryFolder('workshop-init');
    await generateTinyModel(folder, recipeModelOptions('workshop'));
    const config = recipeConfig('workshop', { totalSteps: REPLAYED_STEPS, evalSets: [] });
    const { model, engine } = await engineFor(folder, engineShape(config, 4));
    const runner = await freshRunner(engine, model.tokenizer, config, recipeConfig('workshop'));
    for (let k = 0; k < REPLAYED_STEPS; k++) {
      const r = await runner.runStep();
      expect(Math.abs(r.metrics.imitationLoss! - card.firstLosses[k]), `step ${k + 1}`).toBeLessThan(
        LOSS_TOLERANCE,
      );
    }
  }, 240_000);

  it("the shipped weights have the card's hash and its greedy raw predictions", async () => {
    const bytes = readFileSync(join(WORKSHOP_MODEL_PATH, 'model.safetensors'));
    expect(new Sha256().update(bytes).hexDigest()).toBe(card.weightsSha256);
    const source = nodeFolderSource(WORKSHOP_MODEL_PATH);
    const { model, engine } = await engineFor(source, { maxBatch: 40, maxSeqLen: 64 });
    const report = await evaluate(engine, model.tokenizer, 'arith_eval_200', 'raw', {
      limit: card.predictions.length,
      maxNew: card.run.evalMaxNewRaw,
    });
    expect(
      report.items.map((i) => ({ id: i.id, prediction: i.prediction, completion: i.completion })),
    ).toEqual(card.predictions);
    await source.close();
  }, 120_000);

  it('one workshop self-play step runs from it', async () => {
    // The preset with two sequences per group, two estimation rollouts and two proposer rounds per seeding
    // loop (templates fill the rest), for the gpu layer's budget.
    const config = resolveConfig('workshop', {
      evalSets: [],
      batchPerGroup: 2,
      nEst: 2,
      maxSeedRounds: 2,
    });
    const source = nodeFolderSource(WORKSHOP_MODEL_PATH);
    const shape = engineShape(config, 4);
    const { model, engine } = await engineFor(source, shape);
    const runner = await freshRunner(engine, model.tokenizer, config, config);
    await runner.seed();
    const r = await runner.runStep();
    expect(r.step).toBe(1);
    expect(r.metrics.trainedSequences).toBeGreaterThan(0);
    expect(Number.isFinite(r.metrics.policy.loss)).toBe(true);
    await source.close();
  }, 300_000);
});
