// The reference runner: an exported Qwen2 ONNX model on onnxruntime (any flavour — onnxruntime-node in
// Node, onnxruntime-web's WASM backend in the browser, both with the onnxruntime-common API), with the
// KV cache carried between calls the way transformers.js does. The ort module is injected (each
// flavour has its own Tensor class, and the browser must import it lazily), so this file imports
// only types. Browser-safe.

import type { InferenceSession, Tensor } from 'onnxruntime-common';

/** The parts of an onnxruntime module the runner uses (`import * as ort from 'onnxruntime-node'`). */
export interface OrtModule {
  Tensor: typeof Tensor;
  InferenceSession: typeof InferenceSession;
}

/** Present key/values of every layer, as the model returned them (fed back as the next past). */
export interface KvCache {
  tensors: Record<string, Tensor>;
  /** Cached positions. */
  length: number;
}

export interface ForwardInput {
  /** Token ids [batch][seq] (rows of equal length; left-pad and mask for ragged batches). */
  ids: readonly (readonly number[])[];
  /** [batch][past + seq] of 0/1; default all ones. */
  attentionMask?: readonly (readonly number[])[];
  /** [batch][seq]; default past, past+1, ... */
  positionIds?: readonly (readonly number[])[];
  /** Logits of the last k positions only (0 or absent: all), where the model has num_logits_to_keep. */
  logitsToKeep?: number;
}

export interface ForwardOutput {
  /** f32 [batch, rows, vocab]: rows = seq, or logitsToKeep where the model honours it. */
  logits: Float32Array;
  batch: number;
  seq: number;
  rows: number;
  vocab: number;
  present: KvCache;
}

export interface GreedyResult {
  tokens: number[];
  /** Logits [vocab] that chose each token. */
  stepLogits: Float32Array[];
}

/** Shape of the KV cache inputs, read from the session's metadata. */
interface CacheInput {
  name: string;
  type: Tensor.Type;
  kvHeads: number;
  headDim: number;
}

function toInt64(rows: readonly (readonly number[])[]): BigInt64Array {
  const flat = new BigInt64Array(rows.reduce((n, r) => n + r.length, 0));
  let i = 0;
  for (const r of rows) for (const v of r) flat[i++] = BigInt(v);
  return flat;
}

/** Index of the largest value of `x[offset .. offset + n)`. */
export function argmax(x: ArrayLike<number>, offset = 0, n = x.length - offset): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (x[offset + i] > x[offset + best]) best = i;
  return best;
}

export class OnnxCausalLM {
  private constructor(
    private readonly ort: OrtModule,
    readonly session: InferenceSession,
    private readonly cacheInputs: CacheInput[],
    private readonly hasLogitsToKeep: boolean,
    /** Outputs stay on the GPU (WebGPU EP): each step's past is dead once the next step ran. */
    private readonly onGpu: boolean,
  ) {}

  /** Opens a model (a path in Node; bytes plus `externalData` session options in the browser). */
  static async load(
    ort: OrtModule,
    model: string | Uint8Array,
    options: InferenceSession.SessionOptions = {},
  ): Promise<OnnxCausalLM> {
    const session =
      typeof model === 'string'
        ? await ort.InferenceSession.create(model, options)
        : await ort.InferenceSession.create(model, options);
    const cacheInputs: CacheInput[] = [];
    for (const meta of session.inputMetadata) {
      if (!meta.name.startsWith('past_key_values.')) continue;
      if (!meta.isTensor) throw new Error(`${meta.name}: not a tensor input`);
      const [, kvHeads, , headDim] = meta.shape;
      if (typeof kvHeads !== 'number' || typeof headDim !== 'number')
        throw new Error(
          `${meta.name}: expected fixed kv_heads and head_dim, got ${JSON.stringify(meta.shape)}`,
        );
      cacheInputs.push({ name: meta.name, type: meta.type, kvHeads, headDim });
    }
    for (const need of ['input_ids', 'attention_mask', 'position_ids']) {
      if (!session.inputNames.includes(need)) throw new Error(`ONNX model has no input "${need}"`);
    }
    return new OnnxCausalLM(
      ort,
      session,
      cacheInputs,
      session.inputNames.includes('num_logits_to_keep'),
      options.preferredOutputLocation === 'gpu-buffer',
    );
  }

  /** One forward pass over `input`, continuing `past` (null: empty cache). */
  async forward(input: ForwardInput, past: KvCache | null = null): Promise<ForwardOutput> {
    const { Tensor: T } = this.ort;
    const batch = input.ids.length;
    const seq = input.ids[0]?.length ?? 0;
    if (batch === 0 || seq === 0) throw new Error('forward needs at least one token');
    if (input.ids.some((r) => r.length !== seq)) throw new Error('rows of ids must have equal length');
    const pastLen = past?.length ?? 0;
    const mask = input.attentionMask ?? input.ids.map(() => new Array<number>(pastLen + seq).fill(1));
    const positions =
      input.positionIds ?? input.ids.map(() => Array.from({ length: seq }, (_, i) => pastLen + i));
    const feeds: Record<string, Tensor> = {
      input_ids: new T('int64', toInt64(input.ids), [batch, seq]),
      attention_mask: new T('int64', toInt64(mask), [batch, pastLen + seq]),
      position_ids: new T('int64', toInt64(positions), [batch, seq]),
    };
    if (this.hasLogitsToKeep)
      feeds.num_logits_to_keep = new T('int64', BigInt64Array.of(BigInt(input.logitsToKeep ?? 0)), []);
    for (const c of this.cacheInputs) {
      const given = past?.tensors[c.name.replace('past_key_values.', 'present.')];
      feeds[c.name] =
        given ??
        new T(c.type as 'float32', c.type === 'float16' ? new Uint16Array(0) : new Float32Array(0), [
          batch,
          c.kvHeads,
          0,
          c.headDim,
        ]);
    }
    const out = await this.session.run(feeds);
    // With outputs on the GPU the cache never leaves it (as transformers.js runs it); a past fed once is
    // not fed again, so its buffers go back now rather than at garbage collection.
    if (this.onGpu && past) for (const t of Object.values(past.tensors)) t.dispose();
    const logits = out.logits;
    if (logits.type !== 'float32') throw new Error(`logits are ${logits.type}, expected float32`);
    const logitsData = this.onGpu ? await logits.getData(true) : logits.data;
    const tensors: Record<string, Tensor> = {};
    for (const [name, t] of Object.entries(out)) if (name.startsWith('present.')) tensors[name] = t;
    return {
      logits: logitsData as Float32Array,
      batch,
      seq,
      rows: logits.dims[1],
      vocab: logits.dims[2],
      present: { tensors, length: pastLen + seq },
    };
  }

  /** Greedy decoding of one prompt: prefill, then one decode step per token with the KV cache. */
  async greedy(
    prompt: readonly number[],
    maxNewTokens: number,
    eosIds: readonly number[] = [],
  ): Promise<GreedyResult> {
    const tokens: number[] = [];
    const stepLogits: Float32Array[] = [];
    let out = await this.forward({ ids: [prompt], logitsToKeep: 1 });
    for (let step = 0; step < maxNewTokens; step++) {
      const last = out.logits.slice((out.rows - 1) * out.vocab, out.rows * out.vocab);
      const next = argmax(last);
      tokens.push(next);
      stepLogits.push(last);
      if (eosIds.includes(next) || step + 1 === maxNewTokens) break;
      out = await this.forward({ ids: [[next]] }, out.present);
    }
    return { tokens, stepLogits };
  }

  /**
   * Teacher-forced logits with the KV cache: prefill `prompt`, then feed `continuation` one token at a
   * time. Returns the logits [vocab] after the prompt and after each fed token but the last.
   */
  async teacherForced(prompt: readonly number[], continuation: readonly number[]): Promise<Float32Array[]> {
    const steps: Float32Array[] = [];
    let out = await this.forward({ ids: [prompt], logitsToKeep: 1 });
    for (let i = 0; ; i++) {
      steps.push(out.logits.slice((out.rows - 1) * out.vocab, out.rows * out.vocab));
      if (i + 1 >= continuation.length) break;
      out = await this.forward({ ids: [[continuation[i]]] }, out.present);
    }
    return steps;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
