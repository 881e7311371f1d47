// The policy-gradient update on the GPU (spec 4.7): GpuTrainer.step(batch) = for each micro-batch
// [forward keeping each layer's input → LM head + loss + dlogits on completion rows, lmRows at a
// time → per layer, last to first: recompute the layer with the forward's own encodeLayer, then run
// the backward kernels] → global grad-norm clip + AdamW. Where the activations fit
// (TrainerOptions.keepActivations, default: at most KEEP_ACTIVATIONS_MAX_BYTES) the forward also keeps
// every layer's activations and the backward reads them instead of recomputing (same gradients, bit
// for bit; one forward per step instead of two). It runs on the generation engine's weight
// buffers and KV cache and trains its LoRA adapter in place: the next rollout sees the new weights.
//
// Residual stream gradient `dx` is updated in place through a layer (dx3 → dx2 → dx_in): the norm
// backward kernels accumulate, matching the reference (reference/qwen2-backward.ts).
import type { Policy, StepStats, TrainBatch, TrainSequence } from '../policy.ts';
import { GpuAdamW, type OptimizerOptions, type TrainableTensor } from './adamw.ts';
import { ParamGradKernel } from './kernels/param-grad.ts';
import type { MemoryLedger } from './memory.ts';
import { readF32 } from './buffers.ts';
import { Dispatcher, type DispatchProfiler, type Kernel } from './dispatch.ts';
import type { Engine } from './engine.ts';
import { AttentionDkvKernel, AttentionDqKernel } from './kernels/attention-backward.ts';
import { LmLossKernel } from './kernels/logprob.ts';
import {
  chooseSplits,
  encodeMatmulGrad,
  MatmulGradKernel,
  MatmulSplitReduceKernel,
  type MatmulGradArgs,
} from './kernels/matmul.ts';
import { ResidualAddKernel } from './kernels/residual-add.ts';
import { RmsNormBackwardKernel, RmsNormKernel } from './kernels/rmsnorm.ts';
import { RopeBackwardKernel } from './kernels/rope-kv.ts';
import { SwigluBackwardKernel } from './kernels/swiglu.ts';
import type { GpuLora, GpuLoraPair } from './lora-gpu.ts';
import type { Qwen2Forward } from './qwen2-forward.ts';

/** Most K-slices of a split-K matmul (bounds the partial-sum scratch). */
const MAX_SPLITS = 32;

/**
 * Default bound on the kept per-layer activations (TrainerOptions.keepActivations): the workshop and
 * test models keep theirs (a 4 × 128 model at 1k tokens: ~27 MB); Qwen2-0.5B at 1k tokens would need
 * ~1.7 GB and recomputes.
 */
export const KEEP_ACTIVATIONS_MAX_BYTES = 256 * 2 ** 20;

/** The forward's activations of one layer that its backward reads. */
interface LayerActivations {
  /** x2 = layer input + attention output (the post-attention norm's input). */
  x: GPUBuffer;
  /** The post-attention norm's output (gate|up input). */
  xn: GPUBuffer;
  gu: GPUBuffer;
  act: GPUBuffer;
  att: GPUBuffer;
  /** Rotated queries. */
  q: GPUBuffer;
}

export interface TrainerOptions extends OptimizerOptions {
  /** Most sequences per micro-batch (also bounded by the engine's KV slots and tokens per pass). */
  microBatch?: number;
  /** Shortest K-slice of a split-K backward matmul (default 256; smaller splits more eagerly). */
  splitMinK?: number;
  /**
   * Keep every layer's activations from the forward (copied out after each layer) instead of
   * recomputing each layer from its saved input in the backward: one forward per step instead of two,
   * for L·maxTokens·(4·hidden + 3·intermediate) f32 of memory. Default: when that is at most
   * KEEP_ACTIVATIONS_MAX_BYTES. Both give the same gradients bit for bit (the same kernels on the same
   * inputs).
   */
  keepActivations?: boolean;
}

/** One micro-batch: the sequences it holds and its packed rows. */
interface MicroBatch {
  seqs: TrainSequence[];
  ids: number[];
  slots: number[];
  positions: number[];
  /** (first row, rows) per slot. */
  slotRows: Uint32Array;
  maxRows: number;
  /** Pass row predicting each completion token, its target and (advantage, old, ref, 0). */
  lmRows: number[];
  targets: Uint32Array;
  rowData: Float32Array;
  /** Start of each sequence's completion tokens in lmRows. */
  tokenOffsets: number[];
}

/** Checkpointable trainer state (LoRA parameters + AdamW moments, by PEFT tensor name). */
export interface TrainerState {
  step: number;
  tensors: Record<string, { param: Float32Array; m: Float32Array; v: Float32Array }>;
}

/** Options of one gradient pass. */
export interface GradientOptions {
  /**
   * The completion-token count the loss is normalised by (spec 4.7 token mean): default this batch's
   * own. A larger global count lets a batch be split over several trainers (separate proposer and
   * solver adapters) whose gradients together equal the gradient of the whole batch's mean.
   */
  totalTokens?: number;
}

export interface GradientResult {
  /** L (spec 4.7) over the whole batch. */
  loss: number;
  tokens: number;
  /** Σ entropy over the tokens (0 when entropyCoef = 0). */
  entropySum: number;
  /** Σ k3 KL to the reference over the tokens (0 when klBeta = 0). */
  klSum: number;
  /** logπ of each completion token under the weights before the update, per sequence. */
  logprobs: Float32Array[];
  clipped: number;
  timeMs: Record<string, number>;
  microBatches: number;
}

/** Splits a batch into micro-batches that fit the forward's slots, tokens per pass and positions. */
export function planMicroBatches(
  seqs: readonly TrainSequence[],
  limits: { maxSlots: number; maxTokens: number; maxLen: number },
  microBatch = Infinity,
): MicroBatch[] {
  const out: MicroBatch[] = [];
  let cur: TrainSequence[] = [];
  let tokens = 0;
  const flush = () => {
    if (cur.length) out.push(packMicroBatch(cur));
    cur = [];
    tokens = 0;
  };
  for (const s of seqs) {
    if (s.promptIds.length === 0) throw new Error('every training sequence needs at least one prompt token');
    if (s.completionIds.length === 0) continue;
    const len = s.promptIds.length + s.completionIds.length - 1;
    if (len > limits.maxLen)
      throw new Error(`sequence of ${len} positions exceeds the engine's ${limits.maxLen}`);
    if (len > limits.maxTokens)
      throw new Error(`sequence of ${len} tokens exceeds ${limits.maxTokens} tokens per pass`);
    if (cur.length >= Math.min(limits.maxSlots, microBatch) || tokens + len > limits.maxTokens) flush();
    cur.push(s);
    tokens += len;
  }
  flush();
  return out;
}

function packMicroBatch(seqs: TrainSequence[]): MicroBatch {
  const ids: number[] = [];
  const slots: number[] = [];
  const positions: number[] = [];
  const slotRows = new Uint32Array(seqs.length * 2);
  const lmRows: number[] = [];
  const targets: number[] = [];
  const rowData: number[] = [];
  const tokenOffsets = [0];
  let maxRows = 0;
  seqs.forEach((s, slot) => {
    const input = [...s.promptIds, ...s.completionIds.slice(0, -1)];
    slotRows.set([ids.length, input.length], 2 * slot);
    maxRows = Math.max(maxRows, input.length);
    const base = ids.length;
    input.forEach((id, pos) => {
      ids.push(id);
      slots.push(slot);
      positions.push(pos);
    });
    s.completionIds.forEach((tok, t) => {
      lmRows.push(base + s.promptIds.length - 1 + t);
      targets.push(tok);
      rowData.push(s.advantage, s.oldLogprobs?.[t] ?? 0, s.refLogprobs?.[t] ?? 0, s.weight ?? 1);
    });
    tokenOffsets.push(lmRows.length);
  });
  return {
    seqs,
    ids,
    slots,
    positions,
    slotRows,
    maxRows,
    lmRows,
    targets: Uint32Array.from(targets),
    rowData: Float32Array.from(rowData),
    tokenOffsets,
  };
}

export class GpuTrainer {
  readonly optimizer: GpuAdamW;
  private readonly fwd: Qwen2Forward;
  private readonly d: Dispatcher;
  private readonly mmW: MatmulGradKernel;
  private readonly mmF: MatmulGradKernel;
  private readonly add: ResidualAddKernel;
  private readonly norm: RmsNormKernel;
  private readonly normBack: RmsNormBackwardKernel;
  private readonly normBackScatter: RmsNormBackwardKernel;
  private readonly swigluBack: SwigluBackwardKernel;
  private readonly ropeBack: RopeBackwardKernel;
  private readonly attDq: AttentionDqKernel;
  private readonly attDkv: AttentionDkvKernel;
  private readonly lmLoss: LmLossKernel;
  // Saved layer inputs (the only activations kept across the batch) and the final norm's input.
  private readonly saved: GPUBuffer[] = [];
  private readonly savedFinal: GPUBuffer;
  /** Per layer, with keepActivations; empty when the backward recomputes. */
  private readonly kept: LayerActivations[] = [];
  // Backward scratch, [maxTokens, ...].
  private readonly dx: GPUBuffer;
  private readonly dxn: GPUBuffer;
  private readonly xn1: GPUBuffer;
  private readonly dact: GPUBuffer;
  private readonly dgu: GPUBuffer;
  private readonly datt: GPUBuffer;
  private readonly dq: GPUBuffer;
  private readonly dqkv: GPUBuffer;
  private readonly dk: GPUBuffer;
  private readonly dv: GPUBuffer;
  private readonly attStats: GPUBuffer;
  /** What the optimizer updates: the LoRA tensors, or every base weight (full fine-tuning). */
  readonly trainables: TrainableTensor[];
  private readonly full: FullParams | null = null;
  private readonly pgNorm: ParamGradKernel;
  private readonly pgNormScatter: ParamGradKernel;
  private readonly pgColsum: ParamGradKernel;
  private readonly pgEmbed: ParamGradKernel;
  private readonly splitReduce: MatmulSplitReduceKernel;
  /** Split-K partial sums (long reductions with small outputs). */
  private readonly splitPartial: GPUBuffer;
  private readonly loraH: GPUBuffer;
  private readonly loraDh: GPUBuffer;
  private readonly dhidden: GPUBuffer;
  private readonly slotRows: GPUBuffer;
  private readonly lmTargets: GPUBuffer;
  private readonly lmRowData: GPUBuffer;
  private readonly lmRowOut: GPUBuffer;

  constructor(
    readonly engine: Engine,
    /** The adapter to train; null = full fine-tuning of every base weight (needs f32 weights). */
    readonly lora: GpuLora | null,
    readonly opts: TrainerOptions,
  ) {
    const fwd = (this.fwd = engine.forward);
    const device = fwd.device;
    const c = fwd.config;
    const { maxTokens: T, maxSlots, maxLen, kvDType } = fwd.limits;
    const C = c.hiddenSize;
    const I = c.intermediateSize;
    const kvDim = c.numKeyValueHeads * c.headDim;
    this.d = new Dispatcher(device);
    if (lora) {
      engine.setLora(lora.weights);
      this.trainables = lora.tensors;
    } else {
      if (fwd.weights.dtype !== 'f32')
        throw new Error('full fine-tuning needs f32 weights (load the model with dtype f32)');
      engine.setLora(null);
      this.full = fullParams(fwd, engine.ledger);
      this.trainables = this.full.tensors;
    }
    this.optimizer = new GpuAdamW(device, this.trainables);
    this.pgNorm = new ParamGradKernel(device, 'norm');
    this.pgNormScatter = new ParamGradKernel(device, 'normScatter');
    this.pgColsum = new ParamGradKernel(device, 'colsum');
    this.pgEmbed = new ParamGradKernel(device, 'embed');
    this.mmW = new MatmulGradKernel(device, fwd.weights.dtype, fwd.features);
    this.mmF = fwd.weights.dtype === 'f32' ? this.mmW : new MatmulGradKernel(device, 'f32', fwd.features);
    this.add = new ResidualAddKernel(device);
    this.norm = new RmsNormKernel(device, { residual: false, gather: false }, fwd.features);
    this.normBack = new RmsNormBackwardKernel(device, false);
    this.normBackScatter = new RmsNormBackwardKernel(device, true);
    this.swigluBack = new SwigluBackwardKernel(device);
    this.ropeBack = new RopeBackwardKernel(device);
    this.attDq = new AttentionDqKernel(device, kvDType, fwd.features);
    this.attDkv = new AttentionDkvKernel(device, kvDType, fwd.features);
    this.lmLoss = new LmLossKernel(device, fwd.features);
    const ledger = engine.ledger;
    const act = (n: number, label: string) => ledger.storage('activations', n * 4, `train ${label}`);
    for (let l = 0; l < c.numHiddenLayers; l++) this.saved.push(act(T * C, `layer ${l} input`));
    const keptBytes = c.numHiddenLayers * T * (4 * C + 3 * I) * 4;
    if (opts.keepActivations ?? keptBytes <= KEEP_ACTIVATIONS_MAX_BYTES)
      for (let l = 0; l < c.numHiddenLayers; l++)
        this.kept.push({
          x: act(T * C, `layer ${l} x2`),
          xn: act(T * C, `layer ${l} xn2`),
          gu: act(T * 2 * I, `layer ${l} gate_up`),
          act: act(T * I, `layer ${l} act`),
          att: act(T * C, `layer ${l} att`),
          q: act(T * C, `layer ${l} q`),
        });
    this.savedFinal = act(T * C, 'final norm input');
    this.dx = act(T * C, 'dx');
    this.dxn = act(T * C, 'dxn');
    this.xn1 = act(T * C, 'xn1');
    this.dact = act(T * I, 'dact');
    this.dgu = act(T * 2 * I, 'dgate_up');
    this.datt = act(T * C, 'datt');
    this.dq = act(T * C, 'dq');
    this.dqkv = act(T * fwd.weights.qkvRows, 'dqkv');
    this.dk = act(maxSlots * maxLen * kvDim, 'dk');
    this.dv = act(maxSlots * maxLen * kvDim, 'dv');
    this.attStats = act(T * c.numAttentionHeads * 2, 'attention stats');
    this.splitReduce = new MatmulSplitReduceKernel(device);
    const widest = Math.max(C, I, fwd.weights.qkvRows);
    this.splitPartial = act(
      MAX_SPLITS * Math.max(fwd.limits.lmRows * C, (lora?.rank ?? 1) * widest),
      'split-K partials',
    );
    this.loraH = act(T * (lora?.rank ?? 1), 'lora h');
    this.loraDh = act(T * (lora?.rank ?? 1), 'lora dh');
    this.dhidden = act(fwd.limits.lmRows * C, 'dhidden');
    this.slotRows = act(maxSlots * 2, 'slot rows');
    this.lmTargets = act(T, 'lm targets');
    this.lmRowData = act(T * 4, 'lm row data');
    this.lmRowOut = act(T * 4, 'lm row out');
  }

  /** Whether the backward reads kept activations instead of recomputing each layer (keepActivations). */
  get keepsActivations(): boolean {
    return this.kept.length > 0;
  }

  /**
   * Bench-only: routes the trainer's and the forward's dispatches to `profiler` (per-kernel GPU times),
   * their sites prefixed "bwd:" (the trainer's own: LM head loss, backward kernels) and "fwd:" (the
   * forward's encodeLayer, run by the forward and again by the backward's recomputation). Profiled
   * dispatches run before the copies recorded in the same encoder, so a profiled step's gradients are
   * not the real ones: time it, do not use it.
   */
  setProfiler(profiler: DispatchProfiler | null): void {
    const prefixed = (prefix: string): DispatchProfiler | null =>
      profiler && { dispatch: (site, ...rest) => profiler.dispatch(prefix + site, ...rest) };
    this.d.profiler = prefixed('bwd:');
    this.fwd.dispatcher.profiler = prefixed('fwd:');
  }

  /** Zeroes the LoRA gradients, then accumulates the gradient of the whole batch (all micro-batches). */
  async computeGradients(batch: TrainBatch, opts: GradientOptions = {}): Promise<GradientResult> {
    return this.encodeGradients(batch, opts);
  }

  /**
   * Submits the whole batch's gradient work — every micro-batch's forward, LM-head loss and backward,
   * back to back — and returns the wait for its per-token results: one wait per batch, not three per
   * micro-batch. Each micro-batch's row results are copied out for reading right after its LM head, in
   * queue order, so the next micro-batch may reuse every buffer. A bad batch throws here, before any
   * caller encodes an optimizer step on top.
   */
  private encodeGradients(batch: TrainBatch, opts: GradientOptions): Promise<GradientResult> {
    const t0 = performance.now();
    const device = this.fwd.device;
    const mbs = planMicroBatches(batch.sequences, this.fwd.limits, this.opts.microBatch);
    const ownTokens = mbs.reduce((n, mb) => n + mb.lmRows.length, 0);
    const totalTokens = opts.totalTokens ?? ownTokens;
    if (totalTokens < ownTokens)
      throw new Error(`totalTokens ${totalTokens} is less than the batch's own ${ownTokens} tokens`);
    const wasEnabled = this.fwd.loraEnabled;
    this.fwd.loraEnabled = true;
    const zero = device.createCommandEncoder();
    this.optimizer.encodeZeroGrads(zero);
    device.queue.submit([zero.finish()]);
    const rowOuts: Promise<Float32Array>[] = [];
    try {
      for (const mb of mbs) {
        this.encodeForward(mb);
        this.encodeLmHead(mb, batch, totalTokens);
        const rows = readF32(device, this.lmRowOut, mb.lmRows.length * 4);
        rows.catch(() => undefined); // awaited below; a later encode error must not leave it unhandled
        rowOuts.push(rows);
        this.encodeBackward(mb);
      }
    } finally {
      this.fwd.loraEnabled = wasEnabled;
    }
    const encodeMs = performance.now() - t0;
    return Promise.all(rowOuts).then((rowOut) => {
      let lossSum = 0;
      let entropySum = 0;
      let klSum = 0;
      let clipped = 0;
      const logprobs: Float32Array[] = [];
      mbs.forEach((mb, k) => {
        const out = rowOut[k];
        for (let j = 0; j < mb.seqs.length; j++) {
          const lp = new Float32Array(mb.tokenOffsets[j + 1] - mb.tokenOffsets[j]);
          for (let t = 0; t < lp.length; t++) lp[t] = out[4 * (mb.tokenOffsets[j] + t) + 1];
          logprobs.push(lp);
          // The KL as a metric, from the log-probs the loss used (the gradient's k3 is the kernel's).
          const ref = mb.seqs[j].refLogprobs;
          if (batch.klBeta !== 0 && ref)
            for (let t = 0; t < lp.length; t++) {
              const r = ref[t] - lp[t];
              klSum += Math.exp(r) - r - 1;
            }
        }
        for (let r = 0; r < mb.lmRows.length; r++) {
          lossSum += out[4 * r];
          entropySum += out[4 * r + 2];
          clipped += out[4 * r + 3];
        }
      });
      return {
        loss: totalTokens ? lossSum / totalTokens : 0,
        tokens: ownTokens,
        entropySum: batch.entropyCoef !== 0 ? entropySum : 0,
        klSum,
        logprobs,
        clipped,
        // Host time to encode and submit, then the wait for the GPU (per-kernel times: bench --train).
        timeMs: { encode: encodeMs, gpu: performance.now() - t0 - encodeMs },
        microBatches: mbs.length,
      };
    });
  }

  /**
   * The trainable state for a checkpoint: every LoRA tensor (PEFT name) with its AdamW moments, and
   * the optimizer's step count (bias correction continues from it after a resume).
   */
  async exportState(): Promise<TrainerState> {
    const device = this.fwd.device;
    const tensors: TrainerState['tensors'] = {};
    for (const t of this.trainables) {
      tensors[t.name] = {
        param: await readF32(device, t.param, t.n),
        m: await readF32(device, t.m, t.n),
        v: await readF32(device, t.v, t.n),
      };
    }
    return { step: this.optimizer.step, tensors };
  }

  /** Restores a state from exportState (same adapter layout; every tensor must be present). */
  importState(state: TrainerState): void {
    const q = this.fwd.device.queue;
    for (const t of this.trainables) {
      const s = state.tensors[t.name];
      if (!s || s.param.length !== t.n || s.m.length !== t.n || s.v.length !== t.n)
        throw new Error(`trainer state: ${t.name} is missing or has the wrong size`);
      q.writeBuffer(t.param, 0, s.param.buffer as ArrayBuffer, s.param.byteOffset, s.param.byteLength);
      q.writeBuffer(t.m, 0, s.m.buffer as ArrayBuffer, s.m.byteOffset, s.m.byteLength);
      q.writeBuffer(t.v, 0, s.v.buffer as ArrayBuffer, s.v.byteOffset, s.v.byteLength);
    }
    this.optimizer.step = state.step;
  }

  /** One optimizer step on the batch (Policy.step): its gradients and the AdamW update, one wait. */
  async step(
    batch: TrainBatch,
    opts: GradientOptions = {},
  ): Promise<StepStats & { logprobs: Float32Array[] }> {
    const device = this.fwd.device;
    const t0 = performance.now();
    const pending = this.encodeGradients(batch, opts);
    const enc = device.createCommandEncoder();
    this.optimizer.encodeStep(enc, this.opts);
    device.queue.submit([enc.finish()]);
    const [grads, { gradNorm, clipFactor }] = await Promise.all([pending, this.optimizer.readStats()]);
    return {
      loss: grads.loss,
      gradNorm,
      clipFactor,
      tokens: grads.tokens,
      entropy: batch.entropyCoef !== 0 && grads.tokens ? grads.entropySum / grads.tokens : NaN,
      ...(batch.klBeta !== 0 ? { kl: grads.tokens ? grads.klSum / grads.tokens : NaN } : {}),
      timeMs: { encode: grads.timeMs.encode, gpu: performance.now() - t0 - grads.timeMs.encode },
      logprobs: grads.logprobs,
    };
  }

  private encodeForward(mb: MicroBatch): void {
    const fwd = this.fwd;
    const device = fwd.device;
    const c = fwd.config;
    const T = mb.ids.length;
    const bytes = T * c.hiddenSize * 4;
    fwd.writeTokens(mb.ids, mb.slots, mb.positions);
    device.queue.writeBuffer(this.slotRows, 0, mb.slotRows.buffer as ArrayBuffer);
    device.queue.writeBuffer(this.lmTargets, 0, mb.targets.buffer as ArrayBuffer);
    device.queue.writeBuffer(this.lmRowData, 0, mb.rowData.buffer as ArrayBuffer);
    const enc = device.createCommandEncoder({ label: 'train forward' });
    let pass = enc.beginComputePass();
    fwd.encodeEmbedding(pass, T);
    pass.end();
    enc.copyBufferToBuffer(fwd.x, 0, this.saved[0], 0, bytes);
    pass = enc.beginComputePass();
    for (let l = 0; l < c.numHiddenLayers; l++) {
      if (l > 0)
        this.dispatch(pass, `save${l}`, this.add, {
          a: fwd.x,
          b: fwd.proj,
          out: this.saved[l],
          n: T * c.hiddenSize,
        });
      fwd.encodeLayer(pass, l, T);
      const keep = this.kept[l];
      if (keep) {
        pass.end();
        const I = c.intermediateSize;
        const C = c.hiddenSize;
        const copies: [GPUBuffer, GPUBuffer, number][] = [
          [fwd.x, keep.x, C],
          [fwd.xn, keep.xn, C],
          [fwd.gu, keep.gu, 2 * I],
          [fwd.act, keep.act, I],
          [fwd.att, keep.att, C],
          [fwd.q, keep.q, C],
        ];
        for (const [src, dst, width] of copies) enc.copyBufferToBuffer(src, 0, dst, 0, T * width * 4);
        pass = enc.beginComputePass();
      }
    }
    this.dispatch(pass, 'saveFinal', this.add, {
      a: fwd.x,
      b: fwd.proj,
      out: this.savedFinal,
      n: T * c.hiddenSize,
    });
    pass.end();
    enc.clearBuffer(this.dx, 0, bytes);
    device.queue.submit([enc.finish()]);
  }

  /** LM head, loss and dL/dhidden → dx at the completion rows, lmRows rows per submission. */
  private encodeLmHead(mb: MicroBatch, batch: TrainBatch, totalTokens: number): void {
    const fwd = this.fwd;
    const device = fwd.device;
    const c = fwd.config;
    const hasOld = mb.seqs.some((s) => s.oldLogprobs);
    const hasRef = batch.klBeta !== 0;
    if (hasOld && !mb.seqs.every((s) => s.oldLogprobs))
      throw new Error('oldLogprobs must be given for every sequence or none');
    if (hasRef && !mb.seqs.every((s) => s.refLogprobs))
      throw new Error('klBeta > 0 needs refLogprobs on every sequence');
    const block = fwd.limits.lmRows;
    for (let off = 0; off < mb.lmRows.length; off += block) {
      const R = Math.min(block, mb.lmRows.length - off);
      device.queue.writeBuffer(fwd.headIdx, 0, Uint32Array.from(mb.lmRows.slice(off, off + R)));
      const enc = device.createCommandEncoder({ label: 'train lm head' });
      const pass = enc.beginComputePass();
      fwd.encodeHead(pass, R);
      fwd.encodeLmHead(pass, R);
      this.dispatch(pass, 'lmloss', this.lmLoss, {
        logits: fwd.logits,
        targets: this.lmTargets,
        rowData: this.lmRowData,
        rowOut: this.lmRowOut,
        R,
        V: c.vocabSize,
        rowOff: off,
        invN: 1 / totalTokens,
        clipEps: batch.clipEps,
        entropyCoef: batch.entropyCoef,
        klBeta: batch.klBeta,
        temperature: batch.temperature,
        hasOld,
        hasRef,
      });
      fwd.weights.lmHeadChunks.forEach((ch, i) =>
        this.mmGrad(pass, `lm.dhidden${i}`, this.mmW, {
          a: fwd.logits,
          b: ch.buffer,
          out: this.dhidden,
          M: R,
          N: c.hiddenSize,
          K: ch.rowEnd - ch.rowStart,
          transA: false,
          transB: false,
          lda: c.vocabSize,
          aOff: ch.rowStart,
          accumulate: i > 0,
        }),
      );
      if (this.full) {
        // Tied LM head: dE[chunk] += dlogits[:, chunk]ᵀ · hidden; final norm weight.
        fwd.weights.lmHeadChunks.forEach((ch, i) =>
          this.mmGrad(pass, `lm.dE${i}`, this.mmF, {
            a: fwd.logits,
            b: fwd.hidden,
            out: this.fullGrad(`embed${i}`),
            M: ch.rowEnd - ch.rowStart,
            N: c.hiddenSize,
            K: R,
            transA: true,
            transB: false,
            lda: c.vocabSize,
            aOff: ch.rowStart,
            accumulate: true,
          }),
        );
        this.dispatch(pass, 'lm.dnorm', this.pgNormScatter, {
          x: this.savedFinal,
          dy: this.dhidden,
          g: this.fullGrad('finalNorm'),
          rowIdx: fwd.headIdx,
          R,
          C: c.hiddenSize,
          eps: c.rmsNormEps,
        });
      }
      this.dispatch(pass, 'lm.normback', this.normBackScatter, {
        x: this.savedFinal,
        weight: fwd.weights.finalNorm,
        dy: this.dhidden,
        dx: this.dx,
        rowIdx: fwd.headIdx,
        R,
        C: c.hiddenSize,
        eps: c.rmsNormEps,
      });
      pass.end();
      device.queue.submit([enc.finish()]);
    }
  }

  private encodeBackward(mb: MicroBatch): void {
    const fwd = this.fwd;
    const device = fwd.device;
    const c = fwd.config;
    const T = mb.ids.length;
    const C = c.hiddenSize;
    const I = c.intermediateSize;
    const D = c.headDim;
    const qRows = c.numAttentionHeads * D;
    const kvRows = c.numKeyValueHeads * D;
    const Q = fwd.weights.qkvRows;
    const eps = c.rmsNormEps;
    const enc = device.createCommandEncoder({ label: 'train backward' });
    for (let l = c.numHiddenLayers - 1; l >= 0; l--) {
      const W = fwd.weights.layers[l];
      const s = `L${l}.`;
      const kept = this.kept[l];
      if (!kept) {
        // Recompute the layer from its saved input (proj = 0 makes its fused residual add a no-op).
        enc.copyBufferToBuffer(this.saved[l], 0, fwd.x, 0, T * C * 4);
        enc.clearBuffer(fwd.proj, 0, T * C * 4);
      }
      const A: LayerActivations = kept ?? fwd;
      const pass = enc.beginComputePass({ label: `layer ${l} backward` });
      if (!kept) fwd.encodeLayer(pass, l, T);
      this.dispatch(pass, s + 'xn1', this.norm, {
        x: this.saved[l],
        weight: W.inputNorm,
        out: this.xn1,
        R: T,
        C,
        eps,
      });
      const mm = (
        site: string,
        a: GPUBuffer,
        b: GPUBuffer,
        out: GPUBuffer,
        M: number,
        N: number,
        K: number,
      ) => this.dispatch(pass, s + site, this.mmW, { a, b, out, M, N, K, transA: false, transB: false });
      const lora = (
        target: GpuLoraPair['target'],
        input: GPUBuffer,
        Kin: number,
        dY: GPUBuffer,
        lda: number,
        off: number,
        Nout: number,
        dIn: GPUBuffer,
      ) => this.encodeLoraBackward(pass, l, target, input, Kin, dY, lda, off, Nout, dIn, T);
      // Full fine-tuning: dW[N, K] += dYᵀ · X over this micro-batch's rows.
      const dW = (field: string, dY: GPUBuffer, X: GPUBuffer, N: number, K: number, lda: number) => {
        if (!this.full) return;
        this.mmGrad(pass, s + 'dW.' + field, this.mmF, {
          a: dY,
          b: X,
          out: this.fullGrad(`${l}.${field}`),
          M: N,
          N: K,
          K: T,
          transA: true,
          transB: false,
          lda,
          accumulate: true,
        });
      };
      // MLP: x3 = x2 + down(silu(gate(xn2))·up(xn2)); dx holds dL/dx3.
      mm('down', this.dx, W.down, this.dact, T, I, C);
      dW('down', this.dx, A.act, C, I, C);
      lora('down_proj', A.act, I, this.dx, C, 0, C, this.dact);
      this.dispatch(pass, s + 'swiglu', this.swigluBack, {
        gu: A.gu,
        dact: this.dact,
        dgu: this.dgu,
        T,
        I,
      });
      mm('gateup', this.dgu, W.gateUp, this.dxn, T, C, 2 * I);
      dW('gateUp', this.dgu, A.xn, 2 * I, C, 2 * I);
      lora('gate_proj', A.xn, C, this.dgu, 2 * I, 0, I, this.dxn);
      lora('up_proj', A.xn, C, this.dgu, 2 * I, I, I, this.dxn);
      if (this.full)
        this.dispatch(pass, s + 'dnorm2', this.pgNorm, {
          x: A.x,
          dy: this.dxn,
          g: this.fullGrad(`${l}.postNorm`),
          R: T,
          C,
          eps,
        });
      this.dispatch(pass, s + 'norm2', this.normBack, {
        x: A.x,
        weight: W.postNorm,
        dy: this.dxn,
        dx: this.dx,
        R: T,
        C,
        eps,
      });
      // Attention: x2 = x + o(attn(rope(qkv(xn1)))); dx now holds dL/dx2.
      mm('o', this.dx, W.o, this.datt, T, C, C);
      dW('o', this.dx, A.att, C, C, C);
      lora('o_proj', A.att, C, this.dx, C, 0, C, this.datt);
      const att = {
        q: A.q,
        o: A.att,
        dO: this.datt,
        rows: fwd.rows,
        slotRows: this.slotRows,
        kCache: fwd.kCache[l],
        vCache: fwd.vCache[l],
        dq: this.dq,
        dk: this.dk,
        dv: this.dv,
        stats: this.attStats,
        T,
        nH: c.numAttentionHeads,
        nKv: c.numKeyValueHeads,
        D,
        maxLen: fwd.limits.maxLen,
        nSlots: mb.seqs.length,
        maxRows: mb.maxRows,
      };
      this.dispatch(pass, s + 'attdq', this.attDq, att);
      this.dispatch(pass, s + 'attdkv', this.attDkv, att);
      this.dispatch(pass, s + 'rope', this.ropeBack, {
        dq: this.dq,
        dk: this.dk,
        dv: this.dv,
        rows: fwd.rows,
        cosSin: fwd.cosSin,
        dqkv: this.dqkv,
        T,
        nH: c.numAttentionHeads,
        nKv: c.numKeyValueHeads,
        D,
        maxLen: fwd.limits.maxLen,
      });
      mm('qkv', this.dqkv, W.qkv, this.dxn, T, C, Q);
      dW('qkv', this.dqkv, this.xn1, Q, C, Q);
      if (this.full)
        this.dispatch(pass, s + 'dbias', this.pgColsum, {
          dy: this.dqkv,
          g: this.fullGrad(`${l}.qkvBias`),
          R: T,
          C: Q,
        });
      lora('q_proj', this.xn1, C, this.dqkv, Q, 0, qRows, this.dxn);
      lora('k_proj', this.xn1, C, this.dqkv, Q, qRows, kvRows, this.dxn);
      lora('v_proj', this.xn1, C, this.dqkv, Q, qRows + kvRows, kvRows, this.dxn);
      if (this.full)
        this.dispatch(pass, s + 'dnorm1', this.pgNorm, {
          x: this.saved[l],
          dy: this.dxn,
          g: this.fullGrad(`${l}.inputNorm`),
          R: T,
          C,
          eps,
        });
      this.dispatch(pass, s + 'norm1', this.normBack, {
        x: this.saved[l],
        weight: W.inputNorm,
        dy: this.dxn,
        dx: this.dx,
        R: T,
        C,
        eps,
      });
      pass.end();
    }
    if (this.full) {
      // dx is now dL/d(embedding output): scatter it into the embedding rows.
      const pass = enc.beginComputePass({ label: 'embedding backward' });
      fwd.weights.embedChunks.forEach((ch, i) =>
        this.dispatch(pass, `embed${i}`, this.pgEmbed, {
          dy: this.dx,
          ids: fwd.ids,
          g: this.fullGrad(`embed${i}`),
          R: T,
          C,
          rowStart: ch.rowStart,
          rowEnd: ch.rowEnd,
        }),
      );
      pass.end();
    }
    device.queue.submit([enc.finish()]);
  }

  /**
   * Every trainer dispatch uses a per-site uniform rewritten when its parameters change (each site runs
   * at most once per submission): the dispatcher's cache stays bounded however many different token
   * counts the micro-batches have over a run.
   */
  private dispatch<A>(pass: GPUComputePassEncoder, site: string, kernel: Kernel<A>, args: A): void {
    this.d.dispatch(pass, site, kernel, args, true);
  }

  /** A backward matmul, split along K when its output alone would leave the GPU idle. */
  private mmGrad(
    pass: GPUComputePassEncoder,
    site: string,
    mm: MatmulGradKernel,
    args: MatmulGradArgs,
  ): void {
    const splits = chooseSplits(args.M, args.N, args.K, undefined, this.opts.splitMinK, MAX_SPLITS);
    encodeMatmulGrad(this.d, pass, site, mm, this.splitReduce, args, splits, this.splitPartial, true);
  }

  private fullGrad(key: string): GPUBuffer {
    const t = this.full?.byKey.get(key);
    if (!t) throw new Error(`full fine-tuning: no tensor ${key}`);
    return t.grad;
  }

  /**
   * LoRA backward of one projection whose output gradient is columns [off, off + Nout) of dY (row
   * stride lda): h = x·Aᵀ, dB += s·dYᵀ·h, dh = s·dY·B, dA += dhᵀ·x, dIn += dh·A.
   */
  private encodeLoraBackward(
    pass: GPUComputePassEncoder,
    l: number,
    target: GpuLoraPair['target'],
    input: GPUBuffer,
    Kin: number,
    dY: GPUBuffer,
    lda: number,
    off: number,
    Nout: number,
    dIn: GPUBuffer,
    T: number,
  ): void {
    if (!this.lora) return;
    const pair = this.lora.weights.layers[l][target];
    const p = this.lora.pairs.find((x) => x.layer === l && x.target === target);
    if (!pair || !p) return;
    const r = this.lora.rank;
    const sc = this.lora.scale;
    const site = `L${l}.${target}.`;
    const mm = this.mmF;
    this.dispatch(pass, site + 'h', mm, {
      a: input,
      b: p.A.param,
      out: this.loraH,
      M: T,
      N: r,
      K: Kin,
      transA: false,
      transB: true,
    });
    this.mmGrad(pass, site + 'dB', mm, {
      a: dY,
      b: this.loraH,
      out: p.B.grad,
      M: Nout,
      N: r,
      K: T,
      transA: true,
      transB: false,
      lda,
      aOff: off,
      accumulate: true,
      alpha: sc,
    });
    this.dispatch(pass, site + 'dh', mm, {
      a: dY,
      b: p.B.param,
      out: this.loraDh,
      M: T,
      N: r,
      K: Nout,
      transA: false,
      transB: false,
      lda,
      aOff: off,
      alpha: sc,
    });
    this.mmGrad(pass, site + 'dA', mm, {
      a: this.loraDh,
      b: input,
      out: p.A.grad,
      M: r,
      N: Kin,
      K: T,
      transA: true,
      transB: false,
      accumulate: true,
    });
    this.dispatch(pass, site + 'dx', mm, {
      a: this.loraDh,
      b: p.A.param,
      out: dIn,
      M: T,
      N: Kin,
      K: r,
      transA: false,
      transB: false,
      accumulate: true,
    });
  }
}

/** The engine's generation side plus this trainer's step: the whole Policy. */
export function trainablePolicy(engine: Engine, trainer: GpuTrainer): Policy {
  return {
    generate: (prompts, opts) => engine.generate(prompts, opts),
    logprobs: (batch) => engine.logprobs(batch),
    step: async (batch) => {
      const { logprobs, ...stats } = await trainer.step(batch);
      let sum = 0;
      for (const lp of logprobs) for (const v of lp) sum += v;
      return { ...stats, meanLogprob: stats.tokens > 0 ? sum / stats.tokens : NaN };
    },
  };
}

/** Full fine-tuning: gradient and moment buffers for every base weight (the weights are the params). */
interface FullParams {
  tensors: TrainableTensor[];
  /** By `layer.field` (e.g. "3.qkv"), "finalNorm", "embed{i}". */
  byKey: Map<string, TrainableTensor>;
}

function fullParams(fwd: Qwen2Forward, ledger: MemoryLedger): FullParams {
  const tensors: TrainableTensor[] = [];
  const byKey = new Map<string, TrainableTensor>();
  const add = (key: string, param: GPUBuffer, n: number) => {
    const buf = (what: string) => ledger.storage('lora', n * 4, `full ${key} ${what}`);
    const t = { name: key, param, n, grad: buf('grad'), m: buf('m'), v: buf('v') };
    tensors.push(t);
    byKey.set(key, t);
  };
  const c = fwd.config;
  const C = c.hiddenSize;
  const I = c.intermediateSize;
  const Q = fwd.weights.qkvRows;
  fwd.weights.layers.forEach((L, l) => {
    add(`${l}.inputNorm`, L.inputNorm, C);
    add(`${l}.postNorm`, L.postNorm, C);
    add(`${l}.qkv`, L.qkv, Q * C);
    add(`${l}.qkvBias`, L.qkvBias, Q);
    add(`${l}.o`, L.o, C * C);
    add(`${l}.gateUp`, L.gateUp, 2 * I * C);
    add(`${l}.down`, L.down, C * I);
  });
  add('finalNorm', fwd.weights.finalNorm, C);
  fwd.weights.embedChunks.forEach((ch, i) => add(`embed${i}`, ch.buffer, (ch.rowEnd - ch.rowStart) * C));
  if (!c.tieWordEmbeddings) throw new Error('full fine-tuning supports tied embeddings (Qwen2-0.5B) only');
  return { tensors, byKey };
}
