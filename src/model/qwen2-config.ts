// Qwen2 `config.json`: parse + validate, the tensor list it implies (official HF names), parameter
// count and memory per dtype, and the check of a safetensors file against it. Browser-safe.

import type { SafetensorsFile } from './safetensors-read.ts';

export interface Qwen2Config {
  modelType: 'qwen2';
  hiddenSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  numKeyValueHeads: number;
  intermediateSize: number;
  vocabSize: number;
  /** hiddenSize / numAttentionHeads. */
  headDim: number;
  ropeTheta: number;
  rmsNormEps: number;
  tieWordEmbeddings: boolean;
  maxPositionEmbeddings: number;
  hiddenAct: 'silu';
  bosTokenId: number | null;
  eosTokenId: number | number[] | null;
  /** `torch_dtype` as written (e.g. "bfloat16"); informational. */
  torchDtype: string | null;
  /** The parsed JSON, so writers can round-trip fields we do not model. */
  raw: Readonly<Record<string, unknown>>;
}

export class ModelConfigError extends Error {
  override name = 'ModelConfigError';
}

function positiveInt(raw: Record<string, unknown>, key: string, file: string): number {
  const v = raw[key];
  if (!Number.isSafeInteger(v) || (v as number) <= 0) {
    throw new ModelConfigError(`${file}: "${key}" must be a positive integer, got ${JSON.stringify(v)}`);
  }
  return v as number;
}

function positiveNumber(raw: Record<string, unknown>, key: string, file: string, fallback?: number): number {
  const v = raw[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
    throw new ModelConfigError(
      `${file}: "${key}" must be a positive number, got ${JSON.stringify(raw[key])}`,
    );
  }
  return v;
}

/** Parses a Qwen2 config.json (text or already-parsed JSON). Other architectures are rejected by name. */
export function parseQwen2Config(input: string | unknown, file = 'config.json'): Qwen2Config {
  let raw: unknown = input;
  if (typeof input === 'string') {
    try {
      raw = JSON.parse(input);
    } catch (err) {
      throw new ModelConfigError(
        `${file}: not valid JSON (${err instanceof Error ? err.message : String(err)})`,
        {
          cause: err,
        },
      );
    }
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new ModelConfigError(`${file}: not a JSON object`);
  const r = raw as Record<string, unknown>;
  if (r.model_type !== 'qwen2') {
    const arch = Array.isArray(r.architectures) ? ` (${r.architectures.join(', ')})` : '';
    throw new ModelConfigError(
      `${file}: model_type ${JSON.stringify(r.model_type)}${arch} is not supported; TabZero runs Qwen2 models (model_type "qwen2") only`,
    );
  }
  const hiddenSize = positiveInt(r, 'hidden_size', file);
  const numAttentionHeads = positiveInt(r, 'num_attention_heads', file);
  const numKeyValueHeads =
    r.num_key_value_heads === undefined ? numAttentionHeads : positiveInt(r, 'num_key_value_heads', file);
  if (hiddenSize % numAttentionHeads !== 0) {
    throw new ModelConfigError(
      `${file}: hidden_size ${hiddenSize} is not divisible by num_attention_heads ${numAttentionHeads}`,
    );
  }
  if (numAttentionHeads % numKeyValueHeads !== 0) {
    throw new ModelConfigError(
      `${file}: num_key_value_heads ${numKeyValueHeads} does not divide num_attention_heads ${numAttentionHeads}`,
    );
  }
  const headDim = hiddenSize / numAttentionHeads;
  if (headDim % 2 !== 0)
    throw new ModelConfigError(`${file}: head dimension ${headDim} must be even for rotary embeddings`);
  if (r.head_dim !== undefined && r.head_dim !== headDim) {
    throw new ModelConfigError(
      `${file}: head_dim ${JSON.stringify(r.head_dim)} differs from hidden_size / num_attention_heads = ${headDim}`,
    );
  }
  const hiddenAct = r.hidden_act ?? 'silu';
  if (hiddenAct !== 'silu')
    throw new ModelConfigError(
      `${file}: hidden_act ${JSON.stringify(hiddenAct)} is not supported (only "silu")`,
    );
  if (r.rope_scaling !== undefined && r.rope_scaling !== null) {
    throw new ModelConfigError(`${file}: rope_scaling ${JSON.stringify(r.rope_scaling)} is not supported`);
  }
  if (r.use_sliding_window === true)
    throw new ModelConfigError(`${file}: use_sliding_window=true is not supported`);
  const tie = r.tie_word_embeddings ?? false;
  if (typeof tie !== 'boolean')
    throw new ModelConfigError(`${file}: tie_word_embeddings must be true or false`);
  const tokenId = (key: string): number | null => {
    const v = r[key];
    if (v === undefined || v === null) return null;
    if (!Number.isSafeInteger(v) || (v as number) < 0)
      throw new ModelConfigError(`${file}: "${key}" must be a token id`);
    return v as number;
  };
  let eos: number | number[] | null;
  if (Array.isArray(r.eos_token_id)) {
    if (!r.eos_token_id.every((v) => Number.isSafeInteger(v) && v >= 0))
      throw new ModelConfigError(`${file}: "eos_token_id" must be token ids`);
    eos = r.eos_token_id as number[];
  } else {
    eos = tokenId('eos_token_id');
  }
  return {
    modelType: 'qwen2',
    hiddenSize,
    numHiddenLayers: positiveInt(r, 'num_hidden_layers', file),
    numAttentionHeads,
    numKeyValueHeads,
    intermediateSize: positiveInt(r, 'intermediate_size', file),
    vocabSize: positiveInt(r, 'vocab_size', file),
    headDim,
    ropeTheta: positiveNumber(r, 'rope_theta', file, 10000),
    rmsNormEps: positiveNumber(r, 'rms_norm_eps', file, 1e-6),
    tieWordEmbeddings: tie,
    maxPositionEmbeddings:
      r.max_position_embeddings === undefined ? 32768 : positiveInt(r, 'max_position_embeddings', file),
    hiddenAct: 'silu',
    bosTokenId: tokenId('bos_token_id'),
    eosTokenId: eos,
    torchDtype: typeof r.torch_dtype === 'string' ? r.torch_dtype : null,
    raw: r,
  };
}

/** The tokenizer's ids must fit the embedding (Qwen2 pads its 151,646 tokens to 151,936 rows). */
/**
 * Refuses a tokenizer with ids the embedding has no row for (a tokenizer from another model): names the
 * highest id, its token and the config's vocab_size. The config's vocab_size may be larger (Qwen2 pads).
 */
export function checkVocabAgainstTokenizer(
  config: Qwen2Config,
  tokenizer: { vocabSize: number; lastToken?: string | null },
  file = 'config.json',
): void {
  if (tokenizer.vocabSize <= config.vocabSize) return;
  const id = tokenizer.vocabSize - 1;
  const token = tokenizer.lastToken == null ? '' : ` (${JSON.stringify(tokenizer.lastToken)})`;
  throw new ModelConfigError(
    `tokenizer.json has token id ${id}${token}, but ${file}'s vocab_size is ${config.vocabSize} ` +
      `(ids 0 to ${config.vocabSize - 1}): the tokenizer and the weights come from different models; ` +
      'use the tokenizer files that came with these weights.',
  );
}

export interface TensorShape {
  name: string;
  shape: number[];
}

/** Every tensor a Qwen2 checkpoint holds, with HF's names and shapes ([out, in] for linear weights). */
export function qwen2TensorShapes(c: Qwen2Config): TensorShape[] {
  const h = c.hiddenSize;
  const kv = c.numKeyValueHeads * c.headDim;
  const out: TensorShape[] = [{ name: 'model.embed_tokens.weight', shape: [c.vocabSize, h] }];
  for (let i = 0; i < c.numHiddenLayers; i++) {
    const p = `model.layers.${i}.`;
    out.push(
      { name: `${p}input_layernorm.weight`, shape: [h] },
      { name: `${p}self_attn.q_proj.weight`, shape: [h, h] },
      { name: `${p}self_attn.q_proj.bias`, shape: [h] },
      { name: `${p}self_attn.k_proj.weight`, shape: [kv, h] },
      { name: `${p}self_attn.k_proj.bias`, shape: [kv] },
      { name: `${p}self_attn.v_proj.weight`, shape: [kv, h] },
      { name: `${p}self_attn.v_proj.bias`, shape: [kv] },
      { name: `${p}self_attn.o_proj.weight`, shape: [h, h] },
      { name: `${p}post_attention_layernorm.weight`, shape: [h] },
      { name: `${p}mlp.gate_proj.weight`, shape: [c.intermediateSize, h] },
      { name: `${p}mlp.up_proj.weight`, shape: [c.intermediateSize, h] },
      { name: `${p}mlp.down_proj.weight`, shape: [h, c.intermediateSize] },
    );
  }
  out.push({ name: 'model.norm.weight', shape: [h] });
  if (!c.tieWordEmbeddings) out.push({ name: 'lm_head.weight', shape: [c.vocabSize, h] });
  return out;
}

export function parameterCount(c: Qwen2Config): number {
  return qwen2TensorShapes(c).reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
}

/**
 * Checks that `file` holds every tensor the config implies, with the right shape and a float dtype.
 * Returns the names of tensors it does not know (e.g. an extra `lm_head.weight` in a tied model), which
 * a loader may ignore; throws, naming the file and tensor, on anything missing or misshapen.
 */
export function checkWeightsAgainstConfig(file: SafetensorsFile, c: Qwen2Config): string[] {
  const expected = qwen2TensorShapes(c);
  for (const { name, shape } of expected) {
    if (!file.has(name))
      throw new ModelConfigError(
        `${file.fileName}: missing tensor "${name}" (expected shape [${shape.join(', ')}])`,
      );
    const t = file.tensor(name);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new ModelConfigError(
        `${file.fileName}: tensor "${name}" has shape [${t.shape.join(', ')}], config implies [${shape.join(', ')}]`,
      );
    }
    if (t.dtype !== 'F32' && t.dtype !== 'F16' && t.dtype !== 'BF16') {
      throw new ModelConfigError(
        `${file.fileName}: tensor "${name}" has dtype ${t.dtype}; weights must be F32, F16 or BF16`,
      );
    }
  }
  const known = new Set(expected.map((t) => t.name));
  return file.tensors.filter((t) => !known.has(t.name)).map((t) => t.name);
}

/** Config JSON of Qwen/Qwen2-0.5B-Instruct, the model TabZero is built for. */
export function qwen2_0_5bConfigJson(): Record<string, unknown> {
  return {
    architectures: ['Qwen2ForCausalLM'],
    attention_dropout: 0.0,
    bos_token_id: 151643,
    eos_token_id: 151645,
    hidden_act: 'silu',
    hidden_size: 896,
    initializer_range: 0.02,
    intermediate_size: 4864,
    max_position_embeddings: 32768,
    max_window_layers: 24,
    model_type: 'qwen2',
    num_attention_heads: 14,
    num_hidden_layers: 24,
    num_key_value_heads: 2,
    rms_norm_eps: 1e-6,
    rope_theta: 1000000.0,
    sliding_window: 32768,
    tie_word_embeddings: true,
    torch_dtype: 'bfloat16',
    transformers_version: '4.40.1',
    use_cache: true,
    use_sliding_window: false,
    vocab_size: 151936,
  };
}
