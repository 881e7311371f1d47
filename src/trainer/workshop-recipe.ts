// The workshop model's recipe (`tabzero pretrain --recipe workshop`, `npm run build:workshop-model`): a
// byte-level Qwen2 of ~1 M parameters, created from random weights with a fixed seed, then imitation-
// trained on the engine (full fine-tuning, AdamW, warm-up and cosine decay) on the verifier-made six-role
// curriculum in the workshop prompt family. The stopping rule is fixed here, before any self-play run: stop
// at the first eval whose workshop_dev_200 raw accuracy reaches STOP_ACCURACY, so the solver is partly
// right and self-play has room to teach it.
import { resolveConfig, WORKSHOP_ARITH, type RunConfig } from '../config.ts';
import type { TinyModelOptions } from '../model/tiny-model.ts';
import { byteTokenizerFiles } from '../model/tokenizer-files.ts';

export type RecipeName = 'workshop';
export const RECIPE_NAMES: readonly RecipeName[] = ['workshop'];

export interface Recipe {
  description: string;
  /** The model's shape and seed (tiny-model.ts writes it: byte tokenizer, f32, tied embeddings). */
  model: Required<
    Pick<TinyModelOptions, 'hidden' | 'layers' | 'heads' | 'kvHeads' | 'intermediate' | 'ropeTheta'>
  > & {
    seed: number;
  };
  /** The imitation run's config (mode 'imitation' over the workshop preset's bounds and prompts). */
  run: Partial<RunConfig>;
}

/** What generateTinyModel needs to write a recipe's random initial model (byte tokenizer, f32). */
export function recipeModelOptions(name: RecipeName, seed = RECIPES[name].model.seed): TinyModelOptions {
  const { seed: _recipeSeed, ...shape } = RECIPES[name].model;
  return { seed, tokenizerFiles: byteTokenizerFiles(), tokenizerKind: 'bytes', dtype: 'F32', ...shape };
}

/** Where the shipped workshop model lives in the repository (and is served from by the app). */
export const WORKSHOP_MODEL_PATH = 'public/models/tabzero-workshop';
/** The folder's name: runs on it record the model as `local/tabzero-workshop` (app and CLI alike). */
export const WORKSHOP_MODEL_NAME = 'tabzero-workshop';
/** The app's URL of the shipped model folder (its own origin: no download from elsewhere). */
export const WORKSHOP_MODEL_URL = '/models/tabzero-workshop';

const WORKSHOP_SEED = 20261206;

export const RECIPES: Record<RecipeName, Recipe> = {
  workshop: {
    description:
      'The shipped workshop model: 4 layers × 128, byte tokenizer, imitation on verifier-made data.',
    // RoPE base 10,000 (the original RoPE's): at Qwen2's 1,000,000 most of a 32-dim head's rotation
    // frequencies turn less than a radian over a 30-byte prompt, so they carry no position.
    model: {
      seed: WORKSHOP_SEED,
      hidden: 128,
      layers: 4,
      heads: 4,
      kvHeads: 2,
      intermediate: 384,
      ropeTheta: 10_000,
    },
    run: {
      ...WORKSHOP_ARITH,
      mode: 'imitation',
      seed: WORKSHOP_SEED,
      promptFamily: 'workshop',
      excludeEvalItems: true,
      refs: 2,
      inductionInputs: 4,
      fineTune: 'full',
      totalSteps: 1500,
      lr: 3e-3,
      warmupSteps: 100,
      lrSchedule: 'cosine',
      lrMinRatio: 0.1,
      weightDecay: 0.01,
      gradClip: 1,
      entropyCoef: 0,
      imitationBatch: 48,
      microBatch: 48,
      imitationStopAccuracy: 0.3,
      imitationStopSet: 'workshop_dev_200',
      evalEvery: 100,
      evalSets: ['workshop_dev_200', 'arith_eval_200'],
      evalMode: 'raw',
      evalMaxNewRaw: 8,
      checkpointEverySeconds: 300,
    },
  },
};

/** The recipe's run config with `overrides` (e.g. --steps, --seed) on top. */
export function recipeConfig(name: RecipeName, overrides: Partial<RunConfig> = {}): RunConfig {
  return resolveConfig('workshop', { ...RECIPES[name].run, ...overrides });
}
