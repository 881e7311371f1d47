// The engine: a loaded Qwen2 model on one GPUDevice with a preallocated KV cache, implementing the
// generation side of Policy (generate, logprobs). All sequences of a call decode together (in groups
// of at most maxSlots); each decode step is one command encoder and one small readback (the sampled
// ids with their two log-probs); finished sequences leave the batch. The LM head runs only where
// logits are used. Device loss rejects the pending call with DeviceLostError and is announced to
// listeners as a typed `device.lost` event.
import type { Completion, SampleOptions, StopReason, Tokenizer, TrainBatch } from '../policy.ts';
import type { Qwen2Config } from '../model/qwen2-config.ts';
import type { SafetensorsFile } from '../model/safetensors-read.ts';
import { StreamDecoder } from '../model/tokenizer.ts';
import { shaderFeatures, type GpuContext } from './gpu.ts';
import type { KvDType } from './kernels/rope-kv.ts';
import type { SampleParams } from './kernels/sample.ts';
import type { Arithmetic, WeightDType } from './kernels/weights-wgsl.ts';
import type { LoraWeights } from './lora-types.ts';
import { readBuffer } from './buffers.ts';
import { Dispatcher } from './dispatch.ts';
import { MemoryLedger, type LedgerTotals } from './memory.ts';
import { Qwen2Forward, type ForwardLimits, type LoraDecode } from './qwen2-forward.ts';
import { Qwen2Weights, type UploadProgress } from './qwen2-weights.ts';

export interface EngineOptions {
  /** Sequences decoded together (KV-cache slots). */
  maxBatch: number;
  /** Positions per sequence (prompt + completion). */
  maxSeqLen: number;
  /** Token rows per forward pass (default 1024, at least maxBatch): bounds the activation memory. */
  maxTokensPerPass?: number;
  /** KV-cache precision (default: f16 with 16-bit weights, f32 with f32 weights). */
  kvDType?: KvDType;
  /**
   * How decode applies a LoRA adapter (default 'separate': one split-K x·Aᵀ GEMV per site; 'fused' adds
   * no dispatches but recomputes x·Aᵀ per workgroup: qwen2-forward.ts LoraDecode, measured there).
   */
  loraDecode?: LoraDecode;
  /** Weight dtype override (default: the file's precision). */
  dtype?: WeightDType;
  onProgress?: UploadProgress;
}

export type EngineEvent =
  | { type: 'device.lost'; reason: string; message: string }
  | { type: 'load.progress'; done: number; total: number; name: string };

export class DeviceLostError extends Error {
  override name = 'DeviceLostError';
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(`GPU device lost (${reason}): ${message}. Re-acquire a device and reload the weights.`);
  }
}

/** How the engine runs on its device (`generate --json` prints it; the bench JSON its arithmetic). */
export interface EngineInfo {
  weightDType: WeightDType;
  kvDType: KvDType;
  /** What the weight matmuls multiply in: f16 only for f16 weights on a `shader-f16` device. */
  arithmetic: Arithmetic;
  /** Whether reductions use subgroup operations. */
  subgroups: boolean;
}

/** Per-decode-step counters (the bench reports them). */
export interface EngineStats {
  decodeSteps: number;
  decodeDispatches: number;
  /** Model weight bytes the decode steps' dispatches streamed (Dispatcher.weightBytes). */
  decodeWeightBytes: number;
  decodeReadbacks: number;
  prefillTokens: number;
  decodeTokens: number;
  prefillMs: number;
  decodeMs: number;
}

interface ActiveSeq {
  /** Index in the output list (also its random-stream id). */
  index: number;
  promptIndex: number;
  slot: number;
  prompt: readonly number[];
  ids: number[];
  logprobs: number[];
  sampled: number[];
  stop: StopReason | null;
  /** The completion's text so far; `decoder` holds back an incomplete UTF-8 character at its end. */
  text: string;
  /** Decodes only the new ids each step (a full decode per step made accept O(n²) per sequence). */
  decoder: StreamDecoder | null;
}

const DEFAULT_TOKENS_PER_PASS = 1024;

/** Rows per LM-head block (one matmul tile): see limitsFor. */
const LM_ROWS_PER_BLOCK = 64;

export class Engine {
  readonly ledger: MemoryLedger;
  readonly forward: Qwen2Forward;
  readonly stats: EngineStats = {
    decodeSteps: 0,
    decodeDispatches: 0,
    decodeWeightBytes: 0,
    decodeReadbacks: 0,
    prefillTokens: 0,
    decodeTokens: 0,
    prefillMs: 0,
    decodeMs: 0,
  };
  private readonly listeners = new Set<(e: EngineEvent) => void>();
  private lostInfo: { reason: string; message: string } | null = null;
  private readonly lost: Promise<never>;
  private readonly staging: GPUBuffer;
  /** The pipelined decode loop's second readback buffer (steps alternate between the two). */
  private readonly staging2: GPUBuffer;
  /**
   * Decode with a one-step lag (default): step n+1 is submitted before step n's ids are read back, and
   * its embedding reads step n's sampled ids on the GPU. false: the plain loop (submit, wait, accept),
   * the tests' reference; both give the same completions token for token.
   */
  pipelinedDecode = true;

  private constructor(
    readonly ctx: GpuContext,
    readonly weights: Qwen2Weights,
    ledger: MemoryLedger,
    limits: ForwardLimits,
    readonly tokenizer: Tokenizer | null,
  ) {
    this.ledger = ledger;
    this.forward = new Qwen2Forward(ctx.device, weights, limits, ledger, shaderFeatures(ctx.report));
    this.staging = ledger.create(
      'scratch',
      Math.max(limits.lmRows * 12, limits.maxSlots * limits.maxLen * 4),
      GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ,
      'readback staging',
    );
    this.staging2 = ledger.create(
      'scratch',
      limits.lmRows * 12,
      GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ,
      'readback staging 2',
    );
    this.lost = ctx.device.lost.then((info) => {
      this.lostInfo = { reason: info.reason, message: info.message };
      this.emit({ type: 'device.lost', reason: info.reason, message: info.message });
      throw new DeviceLostError(info.reason, info.message);
    });
    this.lost.catch(() => undefined);
  }

  get config(): Qwen2Config {
    return this.weights.config;
  }

  get info(): EngineInfo {
    const f = this.forward;
    return {
      weightDType: this.weights.dtype,
      kvDType: f.limits.kvDType,
      arithmetic: f.arithmetic,
      subgroups: f.features.subgroups,
    };
  }

  static limitsFor(opts: EngineOptions, weightDType: WeightDType): ForwardLimits {
    const maxTokens = Math.max(opts.maxBatch, opts.maxTokensPerPass ?? DEFAULT_TOKENS_PER_PASS);
    return {
      maxSlots: opts.maxBatch,
      maxLen: opts.maxSeqLen,
      maxTokens,
      // The LM head runs on lmRows rows at a time: a whole 64-row matmul tile, so teacher-forced log-probs
      // and training (hundreds of completion rows) read the vocabulary-sized weight once per 64 rows,
      // not once per KV slot. The logits scratch is lmRows × vocab f32 (39 MB at Qwen2's vocabulary).
      lmRows: Math.max(opts.maxBatch, LM_ROWS_PER_BLOCK),
      kvDType: opts.kvDType ?? (weightDType === 'f32' ? 'f32' : 'f16'),
      loraDecode: opts.loraDecode ?? 'separate',
    };
  }

  /** Loads a model's weights (from the model-I/O layer's safetensors reader) onto the device. */
  static async load(
    ctx: GpuContext,
    config: Qwen2Config,
    weightsFile: SafetensorsFile,
    tokenizer: Tokenizer | null,
    opts: EngineOptions,
  ): Promise<Engine> {
    const ledger = new MemoryLedger(ctx.device);
    const weights = await Qwen2Weights.load(ctx.device, config, weightsFile, ledger, {
      dtype: opts.dtype,
      maxBinding: ctx.device.limits.maxStorageBufferBindingSize,
      onProgress: opts.onProgress,
    });
    return new Engine(ctx, weights, ledger, Engine.limitsFor(opts, weights.dtype), tokenizer);
  }

  /** Random weights of `config`'s shape (bench). */
  static random(
    ctx: GpuContext,
    config: Qwen2Config,
    dtype: WeightDType,
    seed: number,
    opts: EngineOptions,
  ): Engine {
    const ledger = new MemoryLedger(ctx.device);
    const limits = Engine.limitsFor(opts, dtype);
    const weights = Qwen2Weights.random(
      ctx.device,
      config,
      dtype,
      seed,
      ledger,
      new Dispatcher(ctx.device),
      ctx.device.limits.maxStorageBufferBindingSize,
    );
    return new Engine(ctx, weights, ledger, limits, null);
  }

  /**
   * A second engine on the same device with a GPU copy of this one's weights as they are now and the same
   * shape: full fine-tuning's frozen reference for the k3 KL (the trained weights change in place here;
   * the copy never does). Its buffers are its own ledger's: `destroy` frees them.
   */
  frozenCopy(): Engine {
    this.checkAlive();
    const ledger = new MemoryLedger(this.ctx.device);
    const weights = this.weights.copy(ledger);
    return new Engine(this.ctx, weights, ledger, this.forward.limits, this.tokenizer);
  }

  /** Frees every GPU buffer of this engine (a frozen copy's owner calls it; the engine is unusable after). */
  destroy(): void {
    this.ledger.destroyAll();
  }

  /** Zeroes the counters (the bench measures each batch size separately). */
  resetStats(): void {
    for (const k of Object.keys(this.stats) as (keyof EngineStats)[]) this.stats[k] = 0;
  }

  on(listener: (e: EngineEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(e: EngineEvent): void {
    for (const l of this.listeners) l(e);
  }

  setLora(lora: LoraWeights | null): void {
    this.forward.setLora(lora);
  }

  set loraEnabled(on: boolean) {
    this.forward.loraEnabled = on;
  }

  get loraEnabled(): boolean {
    return this.forward.loraEnabled;
  }

  memory(): LedgerTotals {
    const r = this.ledger.report();
    const u = this.forward.dispatcher.uniformBytes;
    return { ...r, scratch: r.scratch + u, total: r.total + u };
  }

  private checkAlive(): void {
    if (this.lostInfo) throw new DeviceLostError(this.lostInfo.reason, this.lostInfo.message);
  }

  /** Copies `bytes` of `src` into the staging buffer and maps it: the one readback. */
  private async readback(
    src: GPUBuffer,
    bytes: number,
    enc: GPUCommandEncoder,
    staging = this.staging,
  ): Promise<ArrayBuffer> {
    const size = Math.ceil(bytes / 4) * 4;
    enc.copyBufferToBuffer(src, 0, staging, 0, size);
    this.ctx.device.queue.submit([enc.finish()]);
    await Promise.race([staging.mapAsync(GPUMapMode.READ, 0, size), this.lost]);
    const out = staging.getMappedRange(0, size).slice(0, bytes);
    staging.unmap();
    return out;
  }

  /**
   * Runs the prompt tokens of `seqs` through the model in passes of at most maxTokens rows, filling
   * their KV-cache slots. `inPass` may add head work to a pass's encoder; `afterPass` runs after its
   * submission, while the pass's activations are still in place (the next pass overwrites them).
   */
  private async prefill(
    seqs: { slot: number; ids: readonly number[] }[],
    inPass?: (pass: GPUComputePassEncoder, rowsOfPass: { seq: number; pos: number }[]) => void,
    afterPass?: (rowsOfPass: { seq: number; pos: number }[]) => void | Promise<void>,
  ): Promise<void> {
    const f = this.forward;
    const all: { seq: number; pos: number }[] = [];
    seqs.forEach((s, i) => s.ids.forEach((_, pos) => all.push({ seq: i, pos })));
    for (let start = 0; start < all.length; start += f.limits.maxTokens) {
      const rows = all.slice(start, start + f.limits.maxTokens);
      f.writeTokens(
        rows.map((r) => seqs[r.seq].ids[r.pos]),
        rows.map((r) => seqs[r.seq].slot),
        rows.map((r) => r.pos),
      );
      const enc = this.ctx.device.createCommandEncoder();
      const pass = enc.beginComputePass();
      f.encodeTokens(pass, rows.length);
      inPass?.(pass, rows);
      pass.end();
      this.ctx.device.queue.submit([enc.finish()]);
      await afterPass?.(rows);
      this.stats.prefillTokens += rows.length;
    }
  }

  async generate(prompts: number[][], opts: SampleOptions): Promise<Completion[]> {
    this.checkAlive();
    const n = opts.n ?? 1;
    const all: { promptIndex: number; prompt: readonly number[] }[] = [];
    prompts.forEach((p, i) => {
      if (p.length === 0) throw new Error(`prompt ${i} is empty`);
      if (p.length + opts.maxNew > this.forward.limits.maxLen)
        throw new Error(
          `prompt ${i}: ${p.length} tokens + ${opts.maxNew} new exceed the engine's ${this.forward.limits.maxLen} positions`,
        );
      for (let k = 0; k < n; k++) all.push({ promptIndex: i, prompt: p });
    });
    // Decode reads the adapter from packed copies: bring them up to date with training's last step.
    this.forward.refreshLora();
    const out: Completion[] = new Array(all.length);
    const slots = this.forward.limits.maxSlots;
    const tok = this.tokenizer;
    for (let g = 0; g < all.length; g += slots) {
      const group = all.slice(g, g + slots).map((s, k): ActiveSeq => ({
        index: g + k,
        promptIndex: s.promptIndex,
        slot: k,
        prompt: s.prompt,
        ids: [],
        logprobs: [],
        sampled: [],
        stop: null,
        text: '',
        decoder: tok ? new StreamDecoder((ids) => tok.decode(ids, { skipSpecialTokens: true })) : null,
      }));
      await this.generateGroup(group, opts);
      for (const s of group) {
        out[s.index] = {
          promptIndex: s.promptIndex,
          ids: s.ids,
          text: s.text + (s.decoder?.flush() ?? ''),
          logprobs: Float32Array.from(s.logprobs),
          sampledLogprobs: Float32Array.from(s.sampled),
          stopReason: s.stop ?? 'length',
        };
      }
    }
    return out;
  }

  private async generateGroup(group: ActiveSeq[], opts: SampleOptions): Promise<void> {
    const f = this.forward;
    const dev = this.ctx.device;
    const stopTokens = new Set(opts.stopTokens ?? this.tokenizer?.eosTokenIds ?? []);
    const stopStrings = opts.stopStrings ?? [];
    if (stopStrings.length > 0 && !this.tokenizer) throw new Error('stop strings need a tokenizer');
    const sample = (step: number) => ({
      temperature: opts.temperature,
      topK: opts.topK ?? 0,
      topP: opts.topP ?? 1,
      seed: opts.seed,
      step,
    });
    // Prefill each distinct prompt once (the n samples of a prompt share it): the leader's KV-cache rows
    // are copied to its followers' slots. The head runs on each sequence's last prompt position only,
    // followers reading their leader's row; n copies are adjacent, so head output rows stay consecutive.
    const t0 = performance.now();
    const leaderOf = group.map((s, k) => {
      const first = group.findIndex((o) => o.promptIndex === s.promptIndex);
      return first === -1 ? k : first;
    });
    const leaders = group.map((_, k) => k).filter((k) => leaderOf[k] === k);
    await this.prefill(
      leaders.map((k) => ({ slot: group[k].slot, ids: group[k].prompt })),
      (pass, rows) => {
        const idx: number[] = [];
        const outRows: number[] = [];
        rows.forEach((r, i) => {
          const lead = leaders[r.seq];
          if (r.pos !== group[lead].prompt.length - 1) return;
          group.forEach((_, k) => {
            if (leaderOf[k] === lead) {
              idx.push(i);
              outRows.push(k);
            }
          });
        });
        if (idx.length === 0) return;
        dev.queue.writeBuffer(f.headIdx, 0, Uint32Array.from(idx));
        f.encodeHead(pass, idx.length, outRows[0], true);
      },
    );
    const copies = dev.createCommandEncoder();
    group.forEach((s, k) => {
      if (leaderOf[k] !== k) f.encodeCopySlot(copies, group[leaderOf[k]].slot, s.slot, s.prompt.length);
    });
    dev.queue.submit([copies.finish()]);
    dev.queue.writeBuffer(f.rowSeq, 0, Uint32Array.from(group.map((s) => s.index)));
    let enc = dev.createCommandEncoder();
    const pass = enc.beginComputePass();
    f.encodeLmHead(pass, group.length, 'gemv');
    f.encodeSample(pass, group.length, sample(0));
    pass.end();
    const identity = Uint32Array.from({ length: group.length }, (_, i) => i);
    if (this.pipelinedDecode) {
      // The prefill's readback is awaited here (so prefillMs holds the prefill's GPU time, as in the
      // plain loop); from the first decode step on, the loop runs a step ahead of its readbacks.
      const first = await this.readback(f.sampleOut, group.length * 12, enc);
      dev.queue.writeBuffer(f.headIdx, 0, identity);
      this.stats.prefillMs += performance.now() - t0;
      await this.decodePipelined(group, Promise.resolve(first), sample, stopTokens, stopStrings, opts.maxNew);
      return;
    }
    let res = await this.readback(f.sampleOut, group.length * 12, enc);
    this.stats.prefillMs += performance.now() - t0;
    let active = group;
    this.accept(active, res, stopTokens, stopStrings, opts.maxNew);
    dev.queue.writeBuffer(f.headIdx, 0, identity);
    for (let step = 1; ; step++) {
      active = active.filter((s) => s.stop === null);
      if (active.length === 0) break;
      const t1 = performance.now();
      const R = active.length;
      f.writeTokens(
        active.map((s) => s.ids[s.ids.length - 1]),
        active.map((s) => s.slot),
        active.map((s) => s.prompt.length + s.ids.length - 1),
      );
      dev.queue.writeBuffer(f.rowSeq, 0, Uint32Array.from(active.map((s) => s.index)));
      enc = this.encodeDecodeStep(R, sample(step), false);
      res = await this.readback(f.sampleOut, R * 12, enc);
      this.stats.decodeReadbacks++;
      this.stats.decodeSteps++;
      this.stats.decodeTokens += R;
      this.accept(active, res, stopTokens, stopStrings, opts.maxNew);
      this.stats.decodeMs += performance.now() - t1;
    }
  }

  /**
   * Encodes one decode step of R rows (embedding, layers, head, LM head, sampler) into a new encoder
   * and counts its dispatches and streamed weight bytes; `fromSamples`: the embedding reads the
   * previous step's sampler output on the GPU (pipelined decode).
   */
  private encodeDecodeStep(R: number, params: SampleParams, fromSamples: boolean): GPUCommandEncoder {
    const f = this.forward;
    const before = f.dispatcher.dispatches;
    const bytesBefore = f.dispatcher.weightBytes;
    const enc = this.ctx.device.createCommandEncoder();
    const pass = enc.beginComputePass();
    f.encodeTokens(pass, R, 'gemv', fromSamples);
    f.encodeHead(pass, R);
    f.encodeLmHead(pass, R, 'gemv');
    f.encodeSample(pass, R, params);
    pass.end();
    this.stats.decodeDispatches += f.dispatcher.dispatches - before;
    this.stats.decodeWeightBytes += f.dispatcher.weightBytes - bytesBefore;
    return enc;
  }

  /**
   * The decode steps with a one-step lag. When step n+1 is encoded, the host knows the tokens up to step
   * n−1: step n+1 runs every row of step n that had not stopped by then and stays under maxNew, its
   * embedding reading row map[t] of step n's sampler output on the GPU; it is submitted (its readback
   * into the other staging buffer started) before step n's readback is awaited. A row whose sequence
   * turns out to have stopped at step n computes one wasted token, discarded by accept. Each row's
   * computation (ids, slot, position, sampling stream and step) is the plain loop's, and decode is
   * batch-invariant, so the completions are identical.
   */
  private async decodePipelined(
    group: ActiveSeq[],
    first: Promise<ArrayBuffer>,
    sample: (step: number) => SampleParams,
    stopTokens: Set<number>,
    stopStrings: readonly string[],
    maxNew: number,
  ): Promise<void> {
    const f = this.forward;
    const dev = this.ctx.device;
    let pending: { rows: ActiveSeq[]; res: Promise<ArrayBuffer> } | null = { rows: group, res: first };
    let stagingNext = this.staging2;
    const t1 = performance.now();
    for (let step = 1; pending; step++) {
      // Rows of `pending` still running after it (as far as the host knows), with one more token to go.
      const prev: ActiveSeq[] = pending.rows;
      const map: number[] = [];
      const rows: ActiveSeq[] = [];
      prev.forEach((s, r) => {
        if (s.stop === null && s.ids.length + 1 < maxNew) {
          map.push(r);
          rows.push(s);
        }
      });
      let next: { rows: ActiveSeq[]; res: Promise<ArrayBuffer> } | null = null;
      if (rows.length > 0) {
        const R = rows.length;
        // Step n's token of each row sits at index ids.length (not yet read back), position prompt + that.
        f.writeTokens(
          map,
          rows.map((s) => s.slot),
          rows.map((s) => s.prompt.length + s.ids.length),
        );
        dev.queue.writeBuffer(f.rowSeq, 0, Uint32Array.from(rows.map((s) => s.index)));
        const enc = this.encodeDecodeStep(R, sample(step), true);
        const res = this.readback(f.sampleOut, R * 12, enc, stagingNext);
        res.catch(() => undefined);
        next = { rows, res };
        stagingNext = stagingNext === this.staging ? this.staging2 : this.staging;
        this.stats.decodeReadbacks++;
        this.stats.decodeSteps++;
      }
      this.accept(pending.rows, await pending.res, stopTokens, stopStrings, maxNew);
      if (next) this.stats.decodeTokens += next.rows.length;
      pending = next;
    }
    this.stats.decodeMs += performance.now() - t1;
  }

  /**
   * Appends each row's sampled token and decides whether its sequence stops. Rows whose sequence has
   * already stopped (the pipelined loop's lag) are skipped: their token is discarded.
   */
  private accept(
    active: ActiveSeq[],
    res: ArrayBuffer,
    stopTokens: Set<number>,
    stopStrings: readonly string[],
    maxNew: number,
  ): void {
    const u = new Uint32Array(res);
    const f = new Float32Array(res);
    active.forEach((s, r) => {
      if (s.stop !== null) return;
      const tok = u[r * 3];
      s.ids.push(tok);
      s.logprobs.push(f[r * 3 + 1]);
      s.sampled.push(f[r * 3 + 2]);
      if (s.decoder) s.text += s.decoder.push(tok);
      if (stopTokens.has(tok)) s.stop = 'stop_token';
      else {
        for (const str of stopStrings) {
          const at = s.text.indexOf(str);
          if (at >= 0) {
            s.stop = 'stop_string';
            s.text = s.text.slice(0, at + str.length);
            s.decoder = null; // the text is final: nothing held back belongs to it
            break;
          }
        }
      }
      if (s.stop === null && s.ids.length >= maxNew) s.stop = 'length';
    });
  }

  /** Teacher-forced log p of each completion token at the batch's temperature, one array per sequence. */
  async logprobs(batch: TrainBatch): Promise<Float32Array[]> {
    return this.completionLogprobs(batch.sequences, batch.temperature);
  }

  async completionLogprobs(
    seqs: readonly { promptIds: readonly number[]; completionIds: readonly number[] }[],
    temperature = 1,
  ): Promise<Float32Array[]> {
    this.checkAlive();
    const f = this.forward;
    const dev = this.ctx.device;
    const out: Float32Array[] = [];
    const slots = f.limits.maxSlots;
    for (let g = 0; g < seqs.length; g += slots) {
      const group = seqs.slice(g, g + slots);
      const inputs = group.map((s, k) => {
        if (s.promptIds.length === 0) throw new Error(`sequence ${g + k} has an empty prompt`);
        const ids = [...s.promptIds, ...s.completionIds.slice(0, Math.max(0, s.completionIds.length - 1))];
        if (ids.length > f.limits.maxLen)
          throw new Error(`sequence ${g + k} exceeds ${f.limits.maxLen} positions`);
        return { slot: k, ids };
      });
      // Output offset of each sequence's completion tokens in lpOut.
      const offsets = [0];
      group.forEach((s) => offsets.push(offsets[offsets.length - 1] + s.completionIds.length));
      const total = offsets[offsets.length - 1];
      await this.prefill(inputs, undefined, (rows) => {
        // Rows of this pass that predict a completion token: position promptLen−1+j predicts token j.
        const idx: number[] = [];
        const targets: number[] = [];
        const outAt: number[] = [];
        rows.forEach((r, i) => {
          const s = group[r.seq];
          const j = r.pos - (s.promptIds.length - 1);
          if (j >= 0 && j < s.completionIds.length) {
            idx.push(i);
            targets.push(s.completionIds[j]);
            outAt.push(offsets[r.seq] + j);
          }
        });
        // Completion rows of a pass are consecutive in lpOut except across sequences: split there too.
        for (let a = 0; a < idx.length;) {
          let b = a + 1;
          while (b < idx.length && b - a < f.limits.lmRows && outAt[b] === outAt[b - 1] + 1) b++;
          dev.queue.writeBuffer(f.headIdx, 0, Uint32Array.from(idx.slice(a, b)));
          dev.queue.writeBuffer(f.targets, 0, Uint32Array.from(targets.slice(a, b)));
          const enc = dev.createCommandEncoder();
          const pass = enc.beginComputePass();
          f.encodeHead(pass, b - a, 0, true);
          f.encodeLmHead(pass, b - a);
          f.encodeLogprob(pass, b - a, outAt[a], temperature);
          pass.end();
          dev.queue.submit([enc.finish()]);
          a = b;
        }
      });
      if (total > 0) {
        const res = new Float32Array(await this.readback(f.lpOut, total * 4, dev.createCommandEncoder()));
        group.forEach((_, k) => out.push(res.slice(offsets[k], offsets[k + 1])));
      } else {
        group.forEach(() => out.push(new Float32Array(0)));
      }
    }
    return out;
  }

  /**
   * Logits [rows, V] of every position of every sequence (packed in order), or from position from[i] of
   * sequence i on (the LM head runs only there: a parity check wants the completion's rows, not the
   * prompt's). For the `logits` command, the ONNX check and tests. Reads back per chunk of rows; not a
   * hot path.
   */
  async allLogits(seqs: readonly (readonly number[])[], from: readonly number[] = []): Promise<Float32Array> {
    this.checkAlive();
    const f = this.forward;
    const dev = this.ctx.device;
    const V = this.config.vocabSize;
    const first = (i: number) => Math.min(Math.max(from[i] ?? 0, 0), seqs[i].length);
    const totalRows = seqs.reduce((n, s, i) => n + s.length - first(i), 0);
    const out = new Float32Array(totalRows * V);
    const slots = f.limits.maxSlots;
    let written = 0;
    for (let g = 0; g < seqs.length; g += slots) {
      const group = seqs.slice(g, g + slots).map((ids, k) => {
        if (ids.length > f.limits.maxLen)
          throw new Error(`sequence ${g + k} exceeds ${f.limits.maxLen} positions`);
        return { slot: k, ids };
      });
      await this.prefill(group, undefined, async (rows) => {
        // Pass rows whose logits are wanted, in order (sequence by sequence, position by position).
        const wanted = rows.flatMap((r, i) => (r.pos >= first(g + r.seq) ? [i] : []));
        for (let a = 0; a < wanted.length; a += f.limits.lmRows) {
          const R = Math.min(f.limits.lmRows, wanted.length - a);
          dev.queue.writeBuffer(f.headIdx, 0, Uint32Array.from(wanted.slice(a, a + R)));
          const enc = dev.createCommandEncoder();
          const pass = enc.beginComputePass();
          f.encodeHead(pass, R, 0, true);
          f.encodeLmHead(pass, R);
          pass.end();
          dev.queue.submit([enc.finish()]);
          const got = new Float32Array(await Promise.race([readBuffer(dev, f.logits, R * V * 4), this.lost]));
          out.set(got, written * V);
          written += R;
        }
      });
    }
    return out;
  }
}
