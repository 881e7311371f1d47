// Qwen2 weights on the GPU. Linear weights keep HF's [out, in] layout in the run's weight dtype (f32, or
// f16 / bf16 packed two per u32); q|k|v and gate|up are stored fused (rows stacked: one matmul each),
// biases and norm weights are f32. The embedding (= tied LM head) is split into row chunks that fit
// the adapter's storage-binding limit. Loaded tensor by tensor from the model-I/O layer's reader.
import { decodeFloats, encodeFloats, type FloatDType } from '../model/dtype.ts';
import type { Qwen2Config } from '../model/qwen2-config.ts';
import type { SafetensorsFile } from '../model/safetensors-read.ts';
import type { Dispatcher } from './dispatch.ts';
import { FillKernel } from './kernels/fill.ts';
import { WEIGHT_DTYPE_BYTES, type WeightDType } from './kernels/weights-wgsl.ts';
import type { MemoryLedger } from './memory.ts';

export interface LayerWeights {
  inputNorm: GPUBuffer;
  postNorm: GPUBuffer;
  /** [(nH + 2·nKv)·D, C]: q rows, then k rows, then v rows. */
  qkv: GPUBuffer;
  /** f32 [(nH + 2·nKv)·D]. */
  qkvBias: GPUBuffer;
  /** [C, C]. */
  o: GPUBuffer;
  /** [2·I, C]: gate rows, then up rows. */
  gateUp: GPUBuffer;
  /** [C, I]. */
  down: GPUBuffer;
}

export interface RowChunk {
  buffer: GPUBuffer;
  rowStart: number;
  rowEnd: number;
}

/** Where an HF tensor lives on the GPU: `buffer` at element `offset` (elements of `dtype`). */
export interface TensorLocation {
  buffer: GPUBuffer;
  offset: number;
  shape: number[];
  dtype: WeightDType;
}

export type UploadProgress = (done: number, total: number, name: string) => void;

// GPUBufferUsage is a global only once a device exists (Node installs it lazily): read it at call time.
const weightUsage = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;

/** Picks the run's weight dtype: the file's precision unless told otherwise (DESIGN.md). */
export function defaultWeightDType(file: FloatDType): WeightDType {
  return file === 'F32' ? 'f32' : file === 'F16' ? 'f16' : 'bf16';
}

const TO_FILE_DTYPE: Record<WeightDType, FloatDType> = { f32: 'F32', f16: 'F16', bf16: 'BF16' };

export class Qwen2Weights {
  readonly layers: LayerWeights[] = [];
  finalNorm!: GPUBuffer;
  embedChunks: RowChunk[] = [];
  /** The LM head's chunks: the embedding's when tied. */
  lmHeadChunks: RowChunk[] = [];
  private readonly locations = new Map<string, TensorLocation>();
  private maxBinding = 0;

  private constructor(
    readonly device: GPUDevice,
    readonly config: Qwen2Config,
    readonly dtype: WeightDType,
    private readonly ledger: MemoryLedger,
  ) {}

  /**
   * Bytes of the weight matrices a decode step streams: every linear layer's and the LM head's (the
   * embedding table once when tied; an untied table is only gathered, a row per token). Norm weights
   * and biases are vectors, under 0.1% of Qwen2-0.5B's bytes, and not counted.
   */
  get matrixBytes(): number {
    const c = this.config;
    const C = c.hiddenSize;
    const I = c.intermediateSize;
    const perLayer = this.qkvRows * C + C * C + 2 * I * C + C * I;
    return (c.numHiddenLayers * perLayer + c.vocabSize * C) * WEIGHT_DTYPE_BYTES[this.dtype];
  }

  get qkvRows(): number {
    const c = this.config;
    return (c.numAttentionHeads + 2 * c.numKeyValueHeads) * c.headDim;
  }

  /** Where `name` (an HF tensor name) lives, for the backward pass and exporters. */
  locate(name: string): TensorLocation {
    const loc = this.locations.get(name);
    if (!loc) throw new Error(`no tensor ${name} on the GPU`);
    return loc;
  }

  private allocate(maxBinding: number): void {
    this.maxBinding = maxBinding;
    const c = this.config;
    const C = c.hiddenSize;
    const I = c.intermediateSize;
    const D = c.headDim;
    const qRows = c.numAttentionHeads * D;
    const kvRows = c.numKeyValueHeads * D;
    const wb = WEIGHT_DTYPE_BYTES[this.dtype];
    const w = (n: number, label: string) => this.ledger.create('weights', n * wb, weightUsage(), label);
    const f = (n: number, label: string) => this.ledger.create('weights', n * 4, weightUsage(), label);
    const at = (name: string, buffer: GPUBuffer, offset: number, shape: number[], dtype = this.dtype) =>
      this.locations.set(name, { buffer, offset, shape, dtype });
    for (let l = 0; l < c.numHiddenLayers; l++) {
      const p = `model.layers.${l}.`;
      const L: LayerWeights = {
        inputNorm: f(C, `${p}input_layernorm`),
        postNorm: f(C, `${p}post_attention_layernorm`),
        qkv: w(this.qkvRows * C, `${p}qkv`),
        qkvBias: f(this.qkvRows, `${p}qkv.bias`),
        o: w(C * C, `${p}o_proj`),
        gateUp: w(2 * I * C, `${p}gate_up`),
        down: w(C * I, `${p}down_proj`),
      };
      this.layers.push(L);
      at(`${p}input_layernorm.weight`, L.inputNorm, 0, [C], 'f32');
      at(`${p}post_attention_layernorm.weight`, L.postNorm, 0, [C], 'f32');
      at(`${p}self_attn.q_proj.weight`, L.qkv, 0, [qRows, C]);
      at(`${p}self_attn.k_proj.weight`, L.qkv, qRows * C, [kvRows, C]);
      at(`${p}self_attn.v_proj.weight`, L.qkv, (qRows + kvRows) * C, [kvRows, C]);
      at(`${p}self_attn.q_proj.bias`, L.qkvBias, 0, [qRows], 'f32');
      at(`${p}self_attn.k_proj.bias`, L.qkvBias, qRows, [kvRows], 'f32');
      at(`${p}self_attn.v_proj.bias`, L.qkvBias, qRows + kvRows, [kvRows], 'f32');
      at(`${p}self_attn.o_proj.weight`, L.o, 0, [C, C]);
      at(`${p}mlp.gate_proj.weight`, L.gateUp, 0, [I, C]);
      at(`${p}mlp.up_proj.weight`, L.gateUp, I * C, [I, C]);
      at(`${p}mlp.down_proj.weight`, L.down, 0, [C, I]);
    }
    this.finalNorm = f(C, 'model.norm');
    at('model.norm.weight', this.finalNorm, 0, [C], 'f32');
    this.embedChunks = this.chunks(maxBinding, 'model.embed_tokens.weight');
    this.lmHeadChunks = c.tieWordEmbeddings ? this.embedChunks : this.chunks(maxBinding, 'lm_head.weight');
  }

  private chunks(maxBinding: number, name: string): RowChunk[] {
    const { vocabSize: V, hiddenSize: C } = this.config;
    const rowBytes = C * WEIGHT_DTYPE_BYTES[this.dtype];
    // Even row counts keep every chunk's packed 16-bit data word-aligned.
    const rowsPerChunk = Math.max(2, Math.floor(maxBinding / rowBytes / 2) * 2);
    const out: RowChunk[] = [];
    for (let r = 0; r < V; r += rowsPerChunk) {
      const rowEnd = Math.min(V, r + rowsPerChunk);
      const buffer = this.ledger.create('weights', (rowEnd - r) * rowBytes, weightUsage(), `${name}[${r}:]`);
      out.push({ buffer, rowStart: r, rowEnd });
    }
    this.locations.set(name, { buffer: out[0].buffer, offset: 0, shape: [V, C], dtype: this.dtype });
    return out;
  }

  /** Every weight buffer, in allocation order (tied LM-head chunks once). */
  private buffers(): GPUBuffer[] {
    const out = this.layers.flatMap((L) => [
      L.inputNorm,
      L.postNorm,
      L.qkv,
      L.qkvBias,
      L.o,
      L.gateUp,
      L.down,
    ]);
    out.push(this.finalNorm, ...this.embedChunks.map((ch) => ch.buffer));
    if (!this.config.tieWordEmbeddings) out.push(...this.lmHeadChunks.map((ch) => ch.buffer));
    return out;
  }

  /**
   * A GPU copy of these weights as they are now, in `ledger` (full fine-tuning's frozen KL reference: the
   * updates that later change these buffers do not reach the copy). Copied on the GPU, no host round trip.
   */
  copy(ledger: MemoryLedger): Qwen2Weights {
    const w = new Qwen2Weights(this.device, this.config, this.dtype, ledger);
    w.allocate(this.maxBinding);
    const enc = this.device.createCommandEncoder({ label: 'copy weights' });
    const to = w.buffers();
    this.buffers().forEach((b, i) => enc.copyBufferToBuffer(b, 0, to[i], 0, b.size));
    this.device.queue.submit([enc.finish()]);
    return w;
  }

  /** Loads every tensor from a safetensors file (validated against the config by the model layer). */
  static async load(
    device: GPUDevice,
    config: Qwen2Config,
    file: SafetensorsFile,
    ledger: MemoryLedger,
    opts: { dtype?: WeightDType; maxBinding: number; onProgress?: UploadProgress },
  ): Promise<Qwen2Weights> {
    const first = file.tensor('model.embed_tokens.weight').dtype as FloatDType;
    const w = new Qwen2Weights(device, config, opts.dtype ?? defaultWeightDType(first), ledger);
    w.allocate(opts.maxBinding);
    const names = file.tensors.map((t) => t.name).filter((n) => n === 'lm_head.weight' || w.locations.has(n));
    let done = 0;
    for (const name of names) {
      if (name === 'lm_head.weight' && config.tieWordEmbeddings) continue;
      const info = file.tensor(name);
      const values = await file.read(name);
      if (name === 'model.embed_tokens.weight' || name === 'lm_head.weight') {
        const chunks = name === 'lm_head.weight' ? w.lmHeadChunks : w.embedChunks;
        for (const ch of chunks) {
          const rowBytes = config.hiddenSize * (values.byteLength / (config.vocabSize * config.hiddenSize));
          const part = values.subarray(ch.rowStart * rowBytes, ch.rowEnd * rowBytes);
          w.write(ch.buffer, 0, part, info.dtype as FloatDType, w.dtype);
        }
      } else {
        const loc = w.locate(name);
        w.write(loc.buffer, loc.offset, values, info.dtype as FloatDType, loc.dtype);
      }
      opts.onProgress?.(++done, names.length, name);
    }
    return w;
  }

  /** Random weights of `config`'s shape, filled on the GPU (the bench's `--shape qwen2-0.5b`). */
  static random(
    device: GPUDevice,
    config: Qwen2Config,
    dtype: WeightDType,
    seed: number,
    ledger: MemoryLedger,
    dispatcher: Dispatcher,
    maxBinding: number,
  ): Qwen2Weights {
    const w = new Qwen2Weights(device, config, dtype, ledger);
    w.allocate(maxBinding);
    const fillW = new FillKernel(device, dtype);
    const fillF = new FillKernel(device, 'f32');
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    let n = 0;
    const fill = (buffer: GPUBuffer, isF32: boolean, center: number, spread: number) => {
      const words = buffer.size / 4;
      dispatcher.dispatch(
        pass,
        `fill${n}`,
        isF32 ? fillF : fillW,
        { out: buffer, words, seed: seed + n++, center, spread },
        true,
      );
    };
    const C = config.hiddenSize;
    const I = config.intermediateSize;
    for (const L of w.layers) {
      fill(L.inputNorm, true, 1, 0.25);
      fill(L.postNorm, true, 1, 0.25);
      fill(L.qkv, dtype === 'f32', 0, Math.sqrt(3 / C));
      fill(L.qkvBias, true, 0, 0.1);
      fill(L.o, dtype === 'f32', 0, Math.sqrt(3 / C));
      fill(L.gateUp, dtype === 'f32', 0, Math.sqrt(3 / C));
      fill(L.down, dtype === 'f32', 0, Math.sqrt(3 / I));
    }
    fill(w.finalNorm, true, 1, 0.25);
    for (const ch of w.embedChunks) fill(ch.buffer, dtype === 'f32', 0, Math.sqrt(3 / C));
    if (!config.tieWordEmbeddings)
      for (const ch of w.lmHeadChunks) fill(ch.buffer, dtype === 'f32', 0, Math.sqrt(3 / C));
    pass.end();
    device.queue.submit([enc.finish()]);
    return w;
  }

  /**
   * Replaces one tensor (HF name; the embedding across its row chunks) with f32 values, converted to the
   * weights' dtype — how a fully fine-tuned checkpoint is put back for eval, chat and export checks.
   */
  writeTensor(name: string, values: Float32Array): void {
    const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    if (name === 'model.embed_tokens.weight' || name === 'lm_head.weight') {
      const chunks = name === 'lm_head.weight' ? this.lmHeadChunks : this.embedChunks;
      const C = this.config.hiddenSize;
      if (values.length !== this.config.vocabSize * C)
        throw new Error(`${name}: wrong size ${values.length}`);
      for (const ch of chunks)
        this.write(ch.buffer, 0, bytes.subarray(ch.rowStart * C * 4, ch.rowEnd * C * 4), 'F32', this.dtype);
      return;
    }
    const loc = this.locate(name);
    const n = loc.shape.reduce((a, b) => a * b, 1);
    if (values.length !== n) throw new Error(`${name}: ${values.length} values, expected ${n}`);
    this.write(loc.buffer, loc.offset, bytes, 'F32', loc.dtype);
  }

  /** Converts `bytes` (file dtype) to `to` and writes them at element `offset` of `buffer`. */
  private write(
    buffer: GPUBuffer,
    offset: number,
    bytes: Uint8Array,
    from: FloatDType,
    to: WeightDType,
  ): void {
    const target = TO_FILE_DTYPE[to];
    const data = from === target ? new Uint8Array(bytes) : encodeFloats(decodeFloats(bytes, from), target);
    const byteOffset = offset * WEIGHT_DTYPE_BYTES[to];
    if (byteOffset % 4 !== 0) throw new Error(`tensor offset ${byteOffset} is not 4-byte aligned`);
    const padded = data.byteLength % 4 === 0 ? data : padTo4(data);
    this.device.queue.writeBuffer(buffer, byteOffset, padded.buffer, padded.byteOffset, padded.byteLength);
  }
}

function padTo4(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.ceil(data.byteLength / 4) * 4);
  out.set(data);
  return out;
}
