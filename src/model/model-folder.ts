// Loads a Hugging Face model folder from any ModelSource: config, tokenizer, generation config, and
// the safetensors header (validated against the config). Weights stay in the source; the engine
// streams them tensor by tensor with `weights.read(name)` / `weights.stream(name)`. Browser-safe.

import { readChunks, readText } from './byte-source.ts';
import type { ModelSource } from './model-source.ts';
import {
  checkVocabAgainstTokenizer,
  checkWeightsAgainstConfig,
  ModelConfigError,
  parseQwen2Config,
  type Qwen2Config,
} from './qwen2-config.ts';
import { openSafetensors, type SafetensorsFile } from './safetensors-read.ts';
import { Sha256 } from './sha256.ts';
import { ModelTokenizer } from './tokenizer.ts';

export const WEIGHTS_FILE = 'model.safetensors';
const SHARD_INDEX_FILE = 'model.safetensors.index.json';

export interface ModelIdentity {
  repo: string;
  revision: string;
  /** SHA-256 (hex) of model.safetensors. */
  sha256: string;
}

export interface LoadedModel {
  config: Qwen2Config;
  tokenizer: ModelTokenizer;
  /** generation_config.json, or null when the folder has none. */
  generationConfig: Record<string, unknown> | null;
  weights: SafetensorsFile;
  /** Tensors in the file that the config does not use (ignored). */
  unusedTensors: string[];
  identity: ModelIdentity;
}

export interface LoadOptions {
  /** Progress of hashing the weights when their SHA-256 is not already known (bytes done, total). */
  onHashProgress?: (bytes: number, total: number) => void;
}

async function readJson(source: ModelSource, file: string): Promise<unknown> {
  const text = await readText(await source.open(file));
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(
      `${source.description}: ${file} is not valid JSON (${err instanceof Error ? err.message : String(err)})`,
      { cause: err },
    );
  }
}

export async function loadModelFolder(source: ModelSource, opts: LoadOptions = {}): Promise<LoadedModel> {
  const files = new Set(await source.list());
  for (const need of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) {
    if (!files.has(need)) throw new Error(`${source.description}: not a model folder (no ${need})`);
  }
  if (!files.has(WEIGHTS_FILE)) {
    if (files.has(SHARD_INDEX_FILE))
      throw new Error(`${source.description}: sharded checkpoints (${SHARD_INDEX_FILE}) are not supported`);
    throw new Error(`${source.description}: no ${WEIGHTS_FILE}`);
  }
  const config = parseQwen2Config(await readJson(source, 'config.json'), 'config.json');
  const generationConfig = files.has('generation_config.json')
    ? ((await readJson(source, 'generation_config.json')) as Record<string, unknown>)
    : null;
  const genEos = generationConfig?.eos_token_id;
  const eosIds = Array.isArray(genEos) ? (genEos as number[]) : typeof genEos === 'number' ? [genEos] : [];
  const tokenizer = new ModelTokenizer(
    await readJson(source, 'tokenizer.json'),
    await readJson(source, 'tokenizer_config.json'),
    eosIds,
  );
  // Token ids past the embedding's rows: refused at load, naming the id (not an out-of-bounds read later).
  try {
    checkVocabAgainstTokenizer(config, tokenizer);
  } catch (err) {
    throw new ModelConfigError(`${source.description}: ${(err as Error).message}`, { cause: err });
  }
  const badEos = eosIds.find((id) => !Number.isSafeInteger(id) || id < 0 || id >= config.vocabSize);
  if (badEos !== undefined)
    throw new ModelConfigError(
      `${source.description}: generation_config.json's eos_token_id ${badEos} is not an id below config.json's ` +
        `vocab_size ${config.vocabSize}: it comes from another model; use the generation_config.json that came with these weights.`,
    );

  const weightSource = await source.open(WEIGHTS_FILE);
  const weights = await openSafetensors(weightSource, WEIGHTS_FILE);
  const unusedTensors = checkWeightsAgainstConfig(weights, config);

  let sha256 = (await source.knownSha256?.(WEIGHTS_FILE)) ?? null;
  if (sha256 === null) {
    const hash = new Sha256();
    for await (const chunk of readChunks(weightSource)) {
      hash.update(chunk);
      opts.onHashProgress?.(hash.length, weightSource.size);
    }
    sha256 = hash.hexDigest();
  }
  return {
    config,
    tokenizer,
    generationConfig,
    weights,
    unusedTensors,
    identity: { repo: source.repo, revision: source.revision, sha256 },
  };
}
