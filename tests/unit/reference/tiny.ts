// Shared tiny configs for the reference tests (byte-level-sized vocab, hidden 16-32).
import type { RefModelConfig } from '../../../src/engine/reference/qwen2.ts';

export const TINY: RefModelConfig = {
  hiddenSize: 16,
  numHiddenLayers: 2,
  numAttentionHeads: 4,
  numKeyValueHeads: 2,
  intermediateSize: 24,
  vocabSize: 40,
  headDim: 4,
  ropeTheta: 10000,
  rmsNormEps: 1e-6,
  tieWordEmbeddings: true,
};
