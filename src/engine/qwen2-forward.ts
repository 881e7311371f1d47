// The Qwen2 forward on the GPU as composable encode steps over explicit buffers, for generation,
// teacher-forced log-probs and (engine-train) per-layer recomputation:
//
//   encodeEmbedding(pass, T)          x[0:T] = embed(ids[0:T])
//   encodeLayer(pass, l, T)           layer l on rows 0..T−1 (row t = token rows[t] = (slot, pos));
//                                     k/v go to the KV cache, so attention sees earlier passes too
//   encodeHead(pass, R, outRow0)      hidden[outRow0 + r] = finalNorm(x + proj)[headIdx[r]]
//   encodeLmHead(pass, R)             logits[0:R, :] = hidden[0:R] · Eᵀ, vocabulary chunk by chunk
//   encodeSample / encodeLogprob      on the logits rows
//
// Residual stream: layer l's first op is `x += proj` (proj = the previous layer's down_proj output; not
// for layer 0) fused with its input RMSNorm, so after encodeLayer(l) the stream is x + proj, and layer
// l's input (HF's hidden_states entering layer l) is x right after that first op.
// Per layer: 9 dispatches (norm, qkv, rope+kv, attention, o, add+norm, gate|up, swiglu, down). A LoRA
// adapter adds in decode ('gemv') one per adapted site with loraDecode 'separate' (x·Aᵀ; ·Bᵀ in the
// GEMV's epilogue) and none with 'fused' (see LoraDecode), and 2 per adapted projection in 'gemm'
// (prefill, log-probs, training: x·Aᵀ, then ·Bᵀ accumulated).
//
// Shader paths (`features`, from the device's granted features, fixed at construction): with `shader-f16`,
// f16 weights multiply in f16 (matmul.ts, gemv.ts state the error) and an f16 KV cache is stored and read
// as native f16; with `subgroups`, norms, attention, gemv, log-probs and sampling reduce in subgroups.
import type { Qwen2Config } from '../model/qwen2-config.ts';
import type { LoraTarget } from '../config.ts';
import { Dispatcher } from './dispatch.ts';
import type { ShaderFeatures } from './gpu.ts';
import { DecodeAttentionKernel } from './kernels/attention-decode.ts';
import { PrefillAttentionKernel } from './kernels/attention-prefill.ts';
import { EmbeddingKernel } from './kernels/embedding.ts';
import { LogprobKernel } from './kernels/logprob.ts';
import { GemvKernel } from './kernels/gemv.ts';
import { MatmulKernel } from './kernels/matmul.ts';
import { RmsNormKernel } from './kernels/rmsnorm.ts';
import { RopeKvKernel, ropeTable, type KvDType } from './kernels/rope-kv.ts';
import { SampleKernel, type SampleParams } from './kernels/sample.ts';
import { SwigluKernel } from './kernels/swiglu.ts';
import { FusedLora, projectionParts, type FusedProjection } from './lora-fused.ts';
import type { Arithmetic } from './kernels/weights-wgsl.ts';
import type { LoraWeights } from './lora-types.ts';
import type { MemoryLedger } from './memory.ts';
import type { Qwen2Weights } from './qwen2-weights.ts';

export type MatmulMode = 'gemm' | 'gemv';

export interface ForwardLimits {
  /** KV-cache slots: sequences decoded together. */
  maxSlots: number;
  /** Positions per slot (prompt + completion). */
  maxLen: number;
  /** Token rows per forward pass (bounds the activation buffers; longer inputs run in several passes). */
  maxTokens: number;
  /** Rows of the logits scratch (≥ maxSlots): the LM head runs on at most this many rows at once. */
  lmRows: number;
  /** KV-cache element type. */
  kvDType: KvDType;
  /** How decode applies a LoRA adapter (see LoraDecode); fixed per engine, never per call. */
  loraDecode: LoraDecode;
}

/**
 * Both paths apply ·Bᵀ in the base decode GEMV's epilogue (gemv.ts) from the packed copies
 * (lora-fused.ts). 'separate' (the default): t = x·Aᵀ for all sub-projections of a site at once, as one
 * split-K GEMV over the stacked A (q|k|v: N = 3r; gate|up: 2r; o, down: r) into a small t buffer that
 * the epilogue reads — one extra dispatch per site (4 per layer), no redundant arithmetic. 'fused': every
 * epilogue workgroup recomputes the t it needs — no extra dispatch (9 per layer), but the arithmetic
 * grows with the batch and the output width. Measured on lavapipe (issue 17, r 16, batch 1/8/32):
 * 'separate' beats 'fused' 2.5×/1.5×/1.4× at hidden 512 (the wide, split-K GEMV of real shapes) and is
 * within noise of it on the hidden-64 tiny model; 'fused' stays as the option for GPUs, where a
 * dispatch costs more than the recomputation. (The earlier 'separate', two matmuls per adapted
 * sub-projection whose x·Aᵀ ran in a single workgroup walking K, lost to this at every batch size and is
 * gone from decode.) Batched and one-at-a-time decoding agree bit for bit on either path, not across them.
 */
export type LoraDecode = 'fused' | 'separate';

export class Qwen2Forward {
  readonly config: Qwen2Config;
  readonly dispatcher: Dispatcher;
  // Activations [maxTokens, ...], f32.
  readonly x: GPUBuffer;
  readonly xn: GPUBuffer;
  readonly qkv: GPUBuffer;
  readonly q: GPUBuffer;
  readonly att: GPUBuffer;
  readonly proj: GPUBuffer;
  readonly gu: GPUBuffer;
  readonly act: GPUBuffer;
  loraTmp: GPUBuffer | null = null;
  /** f32 [maxTokens, 3·rank]: t = x·Aᵀ of one decode site (loraDecode 'split'). */
  private loraT: GPUBuffer | null = null;
  private slotBounce: GPUBuffer | null = null;
  /** u32 [maxTokens] token ids of the pass. */
  readonly ids: GPUBuffer;
  /** vec2<u32> [maxTokens]: (slot, pos) of each row. */
  readonly rows: GPUBuffer;
  readonly kCache: GPUBuffer[] = [];
  readonly vCache: GPUBuffer[] = [];
  readonly cosSin: GPUBuffer;
  // LM head scratch.
  /** u32 [lmRows]: pass rows whose logits are wanted. */
  readonly headIdx: GPUBuffer;
  readonly hidden: GPUBuffer;
  readonly logits: GPUBuffer;
  /** u32 [lmRows]: targets (log-probs) / random-stream ids (sampling). */
  readonly targets: GPUBuffer;
  readonly rowSeq: GPUBuffer;
  /** u32 [lmRows · 3]: sampled id, base log-prob bits, sampled log-prob bits. */
  readonly sampleOut: GPUBuffer;
  /** f32 [maxSlots · maxLen]: teacher-forced log-probs of one group. */
  readonly lpOut: GPUBuffer;

  lora: LoraWeights | null = null;
  loraEnabled = true;
  /** The adapter as the decode GEMV's epilogue reads it (packed copies; see refreshLora). */
  private fusedLora: FusedLora | null = null;
  /** What the weight matmuls multiply in (f16 only for f16 weights with `shader-f16`). */
  readonly arithmetic: Arithmetic;

  private readonly mmW: MatmulKernel;
  private readonly gemvW: GemvKernel;
  private readonly gemvF32: GemvKernel;
  private readonly mmF32: MatmulKernel;
  private readonly embedding: EmbeddingKernel;
  private readonly normPlain: RmsNormKernel;
  private readonly normResidual: RmsNormKernel;
  private readonly normHead: RmsNormKernel;
  private readonly ropeKv: RopeKvKernel;
  private readonly attDecode: DecodeAttentionKernel;
  private readonly attPrefill: PrefillAttentionKernel;
  private readonly swiglu: SwigluKernel;
  private readonly sampler: SampleKernel;
  private readonly logprob: LogprobKernel;

  constructor(
    readonly device: GPUDevice,
    readonly weights: Qwen2Weights,
    readonly limits: ForwardLimits,
    private readonly ledger: MemoryLedger,
    /** The device's optional shader paths (gpu.ts shaderFeatures), fixed for the forward's lifetime. */
    readonly features: ShaderFeatures,
  ) {
    const c = (this.config = weights.config);
    if (limits.lmRows < limits.maxSlots) throw new Error('lmRows must be at least maxSlots');
    this.dispatcher = new Dispatcher(device);
    const T = limits.maxTokens;
    const C = c.hiddenSize;
    const I = c.intermediateSize;
    const a = (n: number, label: string) => ledger.storage('activations', n * 4, label);
    this.x = a(T * C, 'x');
    this.xn = a(T * C, 'xn');
    this.qkv = a(T * weights.qkvRows, 'qkv');
    this.q = a(T * C, 'q');
    this.att = a(T * C, 'att');
    this.proj = a(T * C, 'proj');
    this.gu = a(T * 2 * I, 'gate_up');
    this.act = a(T * I, 'act');
    this.ids = a(T, 'ids');
    this.rows = a(T * 2, 'rows');
    const kvFloats = limits.maxSlots * limits.maxLen * c.numKeyValueHeads * c.headDim;
    for (let l = 0; l < c.numHiddenLayers; l++) {
      const bytes = kvFloats * (limits.kvDType === 'f16' ? 2 : 4);
      this.kCache.push(ledger.storage('kvCache', bytes, `k cache ${l}`));
      this.vCache.push(ledger.storage('kvCache', bytes, `v cache ${l}`));
    }
    const table = ropeTable(limits.maxLen, c.headDim, c.ropeTheta);
    this.cosSin = ledger.storage('scratch', table.byteLength, 'rope cos/sin');
    device.queue.writeBuffer(this.cosSin, 0, table.buffer as ArrayBuffer);
    const s = (n: number, label: string) => ledger.storage('scratch', n * 4, label);
    this.headIdx = s(limits.lmRows, 'head rows');
    this.hidden = s(limits.lmRows * C, 'head hidden');
    this.logits = s(limits.lmRows * c.vocabSize, 'logits');
    this.targets = s(limits.lmRows, 'targets');
    this.rowSeq = s(limits.lmRows, 'row streams');
    this.sampleOut = s(limits.lmRows * 3, 'sample out');
    this.lpOut = s(limits.maxSlots * limits.maxLen, 'logprob out');

    this.mmW = new MatmulKernel(device, true, weights.dtype, features);
    this.arithmetic = this.mmW.arithmetic;
    this.gemvW = new GemvKernel(device, weights.dtype, features);
    this.gemvF32 = weights.dtype === 'f32' ? this.gemvW : new GemvKernel(device, 'f32', features);
    this.mmF32 = weights.dtype === 'f32' ? this.mmW : new MatmulKernel(device, true, 'f32', features);
    this.embedding = new EmbeddingKernel(device, weights.dtype, features);
    this.normPlain = new RmsNormKernel(device, { residual: false, gather: false }, features);
    this.normResidual = new RmsNormKernel(device, { residual: true, gather: false }, features);
    this.normHead = new RmsNormKernel(device, { residual: true, gather: true }, features);
    this.ropeKv = new RopeKvKernel(device, limits.kvDType, features);
    this.attDecode = new DecodeAttentionKernel(device, limits.kvDType, features);
    this.attPrefill = new PrefillAttentionKernel(device, limits.kvDType, features);
    this.swiglu = new SwigluKernel(device);
    this.sampler = new SampleKernel(device, features);
    this.logprob = new LogprobKernel(device, features);
  }

  /** Installs (or removes) the LoRA adapter; `loraEnabled` switches it without removing it. */
  setLora(lora: LoraWeights | null): void {
    this.lora = lora;
    // Bind groups are cached per call site and parameters, not per buffer: a new adapter needs new ones.
    this.dispatcher.clear();
    // Packed copies for decode (both loraDecode paths read them): an adapter of the same layout (the
    // other role's, with separate adapters) reuses the buffers.
    const fused = lora;
    if (fused && this.fusedLora?.layoutKey === FusedLora.layoutKey(fused)) this.fusedLora.bind(fused);
    else {
      this.fusedLora?.destroy();
      this.fusedLora = fused ? FusedLora.create(this.device, this.ledger, this.config, fused) : null;
    }
    this.refreshLora();
    // The x·Aᵀ scratch depends only on the rank: keep it (and its booking) across adapter switches.
    const r = lora?.rank ?? 0;
    this.loraTmp = this.scratch(this.loraTmp, lora ? this.limits.maxTokens * r : 0, 'lora tmp');
    const separate = lora && this.limits.loraDecode === 'separate';
    this.loraT = this.scratch(this.loraT, separate ? this.limits.maxTokens * 3 * r : 0, 'lora decode t');
  }

  /** A LoRA scratch buffer of `floats` (none for 0), reusing `old` when its size fits exactly. */
  private scratch(old: GPUBuffer | null, floats: number, label: string): GPUBuffer | null {
    const bytes = floats > 0 ? Math.max(16, floats * 4) : 0;
    if (old && old.size === bytes) return old;
    if (old) {
      this.ledger.book('lora', -old.size);
      old.destroy();
    }
    if (bytes === 0) return null;
    const buf = this.device.createBuffer({ size: bytes, usage: GPUBufferUsage.STORAGE, label });
    this.ledger.book('lora', buf.size);
    return buf;
  }

  /**
   * Re-copies the adapter's parameters into decode's packed copies. Training updates the per-module
   * buffers in place, so callers run this before decoding with parameters that may have changed (the
   * engine: once per generation call).
   */
  refreshLora(): void {
    if (!this.fusedLora) return;
    const enc = this.device.createCommandEncoder();
    this.fusedLora.refresh(enc);
    this.device.queue.submit([enc.finish()]);
  }

  /**
   * `fromSamples`: the ids are the previous step's sampled tokens, still on the GPU (sampleOut); `ids`
   * then holds each row's row in that output (writeRowMap).
   */
  encodeEmbedding(pass: GPUComputePassEncoder, T: number, fromSamples = false): void {
    const C = this.config.hiddenSize;
    this.weights.embedChunks.forEach((ch, i) =>
      // The site names the variant: the dispatcher caches bind groups by site and parameters.
      this.dispatcher.dispatch(pass, `embed${fromSamples ? 'S' : ''}${i}`, this.embedding, {
        ids: this.ids,
        sampled: fromSamples ? this.sampleOut : undefined,
        table: ch.buffer,
        out: this.x,
        T,
        C,
        rowStart: ch.rowStart,
        rowEnd: ch.rowEnd,
      }),
    );
  }

  /**
   * `mode` picks the weight matmul: 'gemm' (tiled; prefill, log-probs, training) or 'gemv' (decode: few
   * rows, bandwidth-bound). Each is batch-invariant on its own; generation decodes with 'gemv' only.
   */
  encodeLayer(pass: GPUComputePassEncoder, l: number, T: number, mode: MatmulMode = 'gemm'): void {
    const c = this.config;
    const C = c.hiddenSize;
    const I = c.intermediateSize;
    const D = c.headDim;
    const L = this.weights.layers[l];
    const d = this.dispatcher;
    const eps = c.rmsNormEps;
    const site = `L${l}.`;
    if (l === 0) {
      d.dispatch(pass, site + 'norm1', this.normPlain, {
        x: this.x,
        weight: L.inputNorm,
        out: this.xn,
        R: T,
        C,
        eps,
      });
    } else {
      d.dispatch(pass, site + 'norm1', this.normResidual, {
        x: this.x,
        delta: this.proj,
        weight: L.inputNorm,
        out: this.xn,
        R: T,
        C,
        eps,
      });
    }
    this.encodeProjection(pass, l, T, mode, 'qkv', this.xn, L.qkv, this.qkv, L.qkvBias);
    const attShape = {
      T,
      nH: c.numAttentionHeads,
      nKv: c.numKeyValueHeads,
      D,
      maxLen: this.limits.maxLen,
    };
    d.dispatch(pass, site + 'rope', this.ropeKv, {
      qkv: this.qkv,
      rows: this.rows,
      cosSin: this.cosSin,
      q: this.q,
      kCache: this.kCache[l],
      vCache: this.vCache[l],
      ...attShape,
    });
    // Per mode: the two kernels' pipelines (and so their bind groups) differ, and the dispatcher caches
    // bind groups per site.
    d.dispatch(pass, `${site}${mode}.attn`, mode === 'gemv' ? this.attDecode : this.attPrefill, {
      q: this.q,
      rows: this.rows,
      kCache: this.kCache[l],
      vCache: this.vCache[l],
      out: this.att,
      ...attShape,
    });
    this.encodeProjection(pass, l, T, mode, 'o', this.att, L.o, this.proj);
    d.dispatch(pass, site + 'norm2', this.normResidual, {
      x: this.x,
      delta: this.proj,
      weight: L.postNorm,
      out: this.xn,
      R: T,
      C,
      eps,
    });
    this.encodeProjection(pass, l, T, mode, 'gateUp', this.xn, L.gateUp, this.gu);
    d.dispatch(pass, site + 'swiglu', this.swiglu, { gu: this.gu, act: this.act, T, I });
    this.encodeProjection(pass, l, T, mode, 'down', this.act, L.down, this.proj);
  }

  /**
   * out = input · Wᵀ (+ bias) for one fused projection, with the adapter's update: in 'gemv' mode with
   * loraDecode 'fused' in the same dispatch (the epilogue), else as two more dispatches per adapted
   * sub-projection.
   */
  private encodeProjection(
    pass: GPUComputePassEncoder,
    l: number,
    T: number,
    mode: MatmulMode,
    proj: FusedProjection,
    input: GPUBuffer,
    weight: GPUBuffer,
    out: GPUBuffer,
    bias?: GPUBuffer,
  ): void {
    const { parts, K } = projectionParts(this.config, proj);
    const N = parts.reduce((n, p) => n + p.rows, 0);
    const args = { a: input, b: weight, out, bias, M: T, N, K };
    const site = `L${l}.${mode}.${proj}`;
    if (mode === 'gemv') {
      const lora = this.loraEnabled ? this.fusedLora?.layers[l]?.[proj] : undefined;
      if (lora && this.loraT) {
        // 'separate': t = x·Acatᵀ for every sub-projection at once (split-K GEMV), then ·Bcatᵀ in the
        // base GEMV's epilogue: one extra dispatch per site.
        const S = lora.segmentStarts.length + 1;
        this.dispatcher.dispatch(pass, site + '.loraA', this.gemvF32, {
          a: input,
          b: lora.A,
          out: this.loraT,
          M: T,
          N: S * lora.rank,
          K,
          adapterWeights: true,
        });
        this.dispatcher.dispatch(pass, site + '+loraT', this.gemvW, {
          ...args,
          lora: { ...lora, t: this.loraT },
        });
      } else if (lora) this.dispatcher.dispatch(pass, site + '+lora', this.gemvW, { ...args, lora });
      else this.dispatcher.dispatch(pass, site, this.gemvW, args);
      return;
    }
    this.dispatcher.dispatch(pass, site, this.mmW, args);
    let col = 0;
    for (const p of parts) {
      this.encodeLora(pass, l, p.target, input, out, T, p.rows, K, N, col);
      col += p.rows;
    }
  }

  /** out[:, colOff : colOff+N] += scale · (input·Aᵀ)·Bᵀ when the adapter covers this projection. */
  private encodeLora(
    pass: GPUComputePassEncoder,
    l: number,
    target: LoraTarget,
    input: GPUBuffer,
    out: GPUBuffer,
    T: number,
    N: number,
    K: number,
    ldo: number,
    colOff: number,
  ): void {
    const pair = this.loraEnabled ? this.lora?.layers[l]?.[target] : undefined;
    if (!pair || !this.lora || !this.loraTmp) return;
    const r = this.lora.rank;
    const site = `L${l}.${target}.lora`;
    this.dispatcher.dispatch(pass, site + 'A', this.mmF32, {
      a: input,
      b: pair.A,
      out: this.loraTmp,
      M: T,
      N: r,
      K,
    });
    this.dispatcher.dispatch(pass, site + 'B', this.mmF32, {
      a: this.loraTmp,
      b: pair.B,
      out,
      M: T,
      N,
      K: r,
      ldo,
      colOff,
      accumulate: true,
      alpha: this.lora.scale,
    });
  }

  /** Final norm of the rows listed in headIdx[0:R] (after the last layer) into hidden[outRow0 + r]. */
  encodeHead(pass: GPUComputePassEncoder, R: number, outRow0 = 0, dynamic = false): void {
    this.dispatcher.dispatch(
      pass,
      'head.norm',
      this.normHead,
      {
        x: this.x,
        delta: this.proj,
        weight: this.weights.finalNorm,
        out: this.hidden,
        rowIdx: this.headIdx,
        R,
        C: this.config.hiddenSize,
        eps: this.config.rmsNormEps,
        outRow0,
      },
      dynamic,
    );
  }

  /** logits[0:R, :] = hidden[0:R] · LM headᵀ, one matmul per vocabulary chunk. */
  encodeLmHead(pass: GPUComputePassEncoder, R: number, mode: MatmulMode = 'gemm'): void {
    const { hiddenSize: C, vocabSize: V } = this.config;
    this.weights.lmHeadChunks.forEach((ch, i) =>
      this.dispatcher.dispatch(pass, `lm${i}.${mode}`, mode === 'gemv' ? this.gemvW : this.mmW, {
        a: this.hidden,
        b: ch.buffer,
        out: this.logits,
        M: R,
        N: ch.rowEnd - ch.rowStart,
        K: C,
        ldo: V,
        colOff: ch.rowStart,
      }),
    );
  }

  encodeSample(pass: GPUComputePassEncoder, R: number, p: SampleParams): void {
    this.dispatcher.dispatch(
      pass,
      'sample',
      this.sampler,
      { ...p, logits: this.logits, rowSeq: this.rowSeq, out: this.sampleOut, R, V: this.config.vocabSize },
      true,
    );
  }

  encodeLogprob(pass: GPUComputePassEncoder, R: number, outOff: number, temperature = 1): void {
    this.dispatcher.dispatch(
      pass,
      'logprob',
      this.logprob,
      {
        logits: this.logits,
        targets: this.targets,
        out: this.lpOut,
        R,
        V: this.config.vocabSize,
        outOff,
        temperature,
      },
      true,
    );
  }

  /** Runs embedding + every layer on rows 0..T−1 (ids and rows already written). */
  encodeTokens(pass: GPUComputePassEncoder, T: number, mode: MatmulMode = 'gemm', fromSamples = false): void {
    this.encodeEmbedding(pass, T, fromSamples);
    for (let l = 0; l < this.config.numHiddenLayers; l++) this.encodeLayer(pass, l, T, mode);
  }

  /**
   * Copies positions [0, len) of KV-cache slot `from` to slot `to` in every layer (prompts shared by n
   * samples). WebGPU forbids a copy within one buffer, so it goes through a one-slot bounce buffer.
   */
  encodeCopySlot(enc: GPUCommandEncoder, from: number, to: number, len: number): void {
    const c = this.config;
    const rowBytes = c.numKeyValueHeads * c.headDim * (this.limits.kvDType === 'f16' ? 2 : 4);
    const slotBytes = this.limits.maxLen * rowBytes;
    this.slotBounce ??= this.ledger.storage('scratch', slotBytes, 'kv slot bounce');
    for (let l = 0; l < c.numHiddenLayers; l++) {
      for (const cache of [this.kCache[l], this.vCache[l]]) {
        enc.copyBufferToBuffer(cache, from * slotBytes, this.slotBounce, 0, len * rowBytes);
        enc.copyBufferToBuffer(this.slotBounce, 0, cache, to * slotBytes, len * rowBytes);
      }
    }
  }

  /** Writes a pass's token ids and (slot, pos) rows. */
  writeTokens(ids: ArrayLike<number>, slots: ArrayLike<number>, positions: ArrayLike<number>): void {
    const T = ids.length;
    if (T > this.limits.maxTokens) throw new Error(`${T} rows exceed maxTokens ${this.limits.maxTokens}`);
    const rows = new Uint32Array(T * 2);
    for (let t = 0; t < T; t++) {
      if (positions[t] >= this.limits.maxLen)
        throw new Error(`position ${positions[t]} is beyond the KV cache (${this.limits.maxLen} positions)`);
      rows[2 * t] = slots[t];
      rows[2 * t + 1] = positions[t];
    }
    this.device.queue.writeBuffer(this.ids, 0, Uint32Array.from(ids));
    this.device.queue.writeBuffer(this.rows, 0, rows);
  }
}
