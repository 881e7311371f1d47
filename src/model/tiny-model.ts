// Tiny random Qwen2 models: a complete HF folder (config, safetensors with the official tensor names,
// tokenizer files, generation config), deterministic for a seed, written tensor by tensor in bounded
// memory (so `--shape qwen2-0.5b` writes the real 988 MB shape without holding it). The same code runs
// in the browser — it is how the app's built-in tiny model comes into being. Browser-safe.

import { encodeFloats, type FloatDType } from './dtype.ts';
import { writeModelFolder } from './model-folder-write.ts';
import type { FolderSink } from './model-source.ts';
import {
  parseQwen2Config,
  qwen2_0_5bConfigJson,
  qwen2TensorShapes,
  type Qwen2Config,
  type TensorShape,
} from './qwen2-config.ts';
import { hashSeed, Sfc32 } from './rng.ts';
import { BYTE_TOKENIZER_SIZE, type TokenizerFiles } from './tokenizer-files.ts';

export type TinyTokenizerKind = 'qwen2' | 'bytes';

export interface TinyModelOptions {
  seed: number;
  /** Tokenizer files to write (Qwen2's from deriveQwen2TokenizerFiles, or byteTokenizerFiles()). */
  tokenizerFiles: TokenizerFiles;
  tokenizerKind: TinyTokenizerKind;
  dtype: FloatDType;
  /** 'qwen2-0.5b' writes the real model's shape and ignores the size fields below. */
  shape?: 'tiny' | 'qwen2-0.5b';
  hidden?: number;
  layers?: number;
  heads?: number;
  kvHeads?: number;
  intermediate?: number;
  /** RoPE base (Qwen2's own: 1,000,000, made for 32 k positions; a model of short prompts wants less). */
  ropeTheta?: number;
  /** Called after each tensor with (tensors done, total). */
  onTensor?: (done: number, total: number, name: string) => void;
}

export const TINY_DEFAULTS = { hidden: 64, layers: 2, heads: 4, kvHeads: 2, intermediate: 128 } as const;

/**
 * Embedding rows of a byte-tokenizer model: its 259 ids padded to a multiple of 16, the way Qwen2 pads
 * 151,646 ids to 151,936 rows, so the engine meets rows no token uses in tests too.
 */
export const BYTE_MODEL_VOCAB_SIZE = Math.ceil(BYTE_TOKENIZER_SIZE / 16) * 16;
const QWEN2_VOCAB_SIZE = 151936;

// Random-init scales. Not HF's 0.02: with 1/sqrt(fan_in) weights and 1/sqrt(hidden) embeddings a
// random model's activations and logits are O(1), so its outputs are not all near-uniform noise.
/** Norm weights are 1 ± this, so a kernel that ignores them is caught. */
const NORM_SPREAD = 0.25;
/** Biases are uniform in ± this, so a kernel that drops them is caught. */
const BIAS_SPREAD = 0.1;
/** Elements generated per chunk: bounds memory whatever the tensor size. */
const CHUNK_ELEMENTS = 1 << 20;

const TORCH_DTYPE: Record<FloatDType, string> = { BF16: 'bfloat16', F16: 'float16', F32: 'float32' };

function specialId(files: TokenizerFiles, content: string): number {
  const added = files.tokenizer.added_tokens as { id: number; content: string }[];
  const t = added.find((a) => a.content === content);
  if (!t) throw new Error(`tokenizer has no ${content} token`);
  return t.id;
}

/** config.json of the model the options describe. */
export function tinyModelConfigJson(opts: TinyModelOptions): Record<string, unknown> {
  const eos = specialId(opts.tokenizerFiles, '<|im_end|>');
  const bos = specialId(opts.tokenizerFiles, '<|endoftext|>');
  const vocab = opts.tokenizerKind === 'bytes' ? BYTE_MODEL_VOCAB_SIZE : QWEN2_VOCAB_SIZE;
  const base = qwen2_0_5bConfigJson();
  const sized =
    opts.shape === 'qwen2-0.5b'
      ? {}
      : {
          hidden_size: opts.hidden ?? TINY_DEFAULTS.hidden,
          num_hidden_layers: opts.layers ?? TINY_DEFAULTS.layers,
          max_window_layers: opts.layers ?? TINY_DEFAULTS.layers,
          num_attention_heads: opts.heads ?? TINY_DEFAULTS.heads,
          num_key_value_heads: opts.kvHeads ?? TINY_DEFAULTS.kvHeads,
          intermediate_size: opts.intermediate ?? TINY_DEFAULTS.intermediate,
          ...(opts.ropeTheta === undefined ? {} : { rope_theta: opts.ropeTheta }),
        };
  return {
    ...base,
    ...sized,
    vocab_size: vocab,
    bos_token_id: bos,
    eos_token_id: eos,
    torch_dtype: TORCH_DTYPE[opts.dtype],
  };
}

export function generationConfigJson(files: TokenizerFiles): Record<string, unknown> {
  const endOfText = specialId(files, '<|endoftext|>');
  // Qwen2-0.5B-Instruct's own sampling defaults.
  return {
    bos_token_id: endOfText,
    pad_token_id: endOfText,
    do_sample: true,
    eos_token_id: [specialId(files, '<|im_end|>'), endOfText],
    repetition_penalty: 1.1,
    temperature: 0.7,
    top_p: 0.8,
    top_k: 20,
    transformers_version: '4.37.0',
  };
}

/** How a tensor is initialised: uniform around `center` with half-width `spread`. */
function initFor(
  t: { name: string; shape: readonly number[] },
  config: Qwen2Config,
): { center: number; spread: number } {
  if (t.name.endsWith('norm.weight')) return { center: 1, spread: NORM_SPREAD };
  if (t.name.endsWith('.bias')) return { center: 0, spread: BIAS_SPREAD };
  // Uniform(-a, a) has std a/sqrt(3): a = sqrt(3)/sqrt(fan) gives std 1/sqrt(fan).
  const fan =
    t.name === 'model.embed_tokens.weight' || t.name === 'lm_head.weight' ? config.hiddenSize : t.shape[1];
  return { center: 0, spread: Math.sqrt(3 / fan) };
}

/** A tensor's values in `dtype`, chunk by chunk; deterministic for (seed, name). */
export function* tensorChunks(
  seed: number,
  t: { name: string; shape: readonly number[] },
  config: Qwen2Config,
  dtype: FloatDType,
): Generator<Uint8Array> {
  const rng = new Sfc32(hashSeed(seed, t.name));
  const { center, spread } = initFor(t, config);
  const total = t.shape.reduce((a, b) => a * b, 1);
  const buf = new Float32Array(Math.min(CHUNK_ELEMENTS, total));
  for (let done = 0; done < total; done += buf.length) {
    const n = Math.min(buf.length, total - done);
    const view = buf.subarray(0, n);
    rng.fillUniform(view, center, spread);
    // Copy: encodeFloats returns a view of `buf` for F32, which the next chunk overwrites.
    yield encodeFloats(view, dtype).slice();
  }
}

export interface TinyModelResult {
  config: Qwen2Config;
  tensors: TensorShape[];
  safetensorsBytes: number;
}

/** Writes config.json, generation_config.json, tokenizer files and model.safetensors to `out`. */
export async function generateTinyModel(out: FolderSink, opts: TinyModelOptions): Promise<TinyModelResult> {
  if (!Number.isSafeInteger(opts.seed) || opts.seed < 0)
    throw new Error(`seed must be a non-negative integer, got ${opts.seed}`);
  const configJson = tinyModelConfigJson(opts);
  const config = parseQwen2Config(configJson, 'tiny-model config');
  const shapes = qwen2TensorShapes(config);
  const specs = shapes.map((t) => ({ ...t, dtype: opts.dtype }));
  let done = 0;
  const plan = await writeModelFolder(out, {
    config: configJson,
    generationConfig: generationConfigJson(opts.tokenizerFiles),
    tokenizerFiles: opts.tokenizerFiles,
    tensors: specs,
    *produce(spec) {
      yield* tensorChunks(opts.seed, spec, config, opts.dtype);
      opts.onTensor?.(++done, specs.length, spec.name);
    },
    metadata: { generator: 'tabzero tiny-model', seed: String(opts.seed) },
  });
  return { config, tensors: shapes, safetensorsBytes: plan.fileSize };
}
