// The LoRA adapter on the GPU: parameters (what the forward reads, as lora-types.ts's LoraWeights),
// gradients and AdamW moments, all f32, one buffer each per tensor, booked under 'lora'. Tensors are
// named in PEFT naming, so optimizer state and checkpoints line up with adapter files.
import type { LoraTarget } from '../config.ts';
import type { TrainableTensor } from './adamw.ts';
import { readF32 } from './buffers.ts';
import {
  moduleName,
  peftTensorName,
  TARGET_PROJECTION,
  type HostLora,
  type LoraShapeConfig,
} from '../model/lora.ts';
import type { LoraWeights } from './lora-types.ts';
import type { MemoryLedger } from './memory.ts';

const TARGETS = Object.keys(TARGET_PROJECTION) as LoraTarget[];

export interface GpuLoraPair {
  module: string;
  layer: number;
  target: LoraTarget;
  A: TrainableTensor;
  B: TrainableTensor;
}

export class GpuLora {
  readonly weights: LoraWeights;
  readonly pairs: GpuLoraPair[] = [];

  private constructor(
    private readonly device: GPUDevice,
    readonly rank: number,
    readonly scale: number,
    numLayers: number,
  ) {
    this.weights = { rank, scale, layers: Array.from({ length: numLayers }, () => ({})) };
  }

  /** Every parameter tensor with its gradient and moments (AdamW's list). */
  get tensors(): TrainableTensor[] {
    return this.pairs.flatMap((p) => [p.A, p.B]);
  }

  /** Bytes of parameters, gradients and moments. */
  get bytes(): number {
    return this.tensors.reduce((n, t) => n + 4 * 4 * t.n, 0);
  }

  /** Uploads a host adapter (every module the same rank and scale). */
  static create(device: GPUDevice, ledger: MemoryLedger, cfg: LoraShapeConfig, host: HostLora): GpuLora {
    const pairs = Object.values(host);
    if (pairs.length === 0) throw new Error('LoRA adapter has no modules');
    const { rank, scale } = pairs[0];
    if (pairs.some((p) => p.rank !== rank || p.scale !== scale))
      throw new Error('the GPU engine needs one LoRA rank and alpha for every module');
    const lora = new GpuLora(device, rank, scale, cfg.numHiddenLayers);
    for (let l = 0; l < cfg.numHiddenLayers; l++) {
      for (const target of TARGETS) {
        const mod = moduleName(l, TARGET_PROJECTION[target]);
        const p = host[mod];
        if (!p) continue;
        const tensor = (which: 'A' | 'B', data: ArrayLike<number>): TrainableTensor => {
          const name = peftTensorName(mod, which);
          const n = data.length;
          const buf = (what: string) => ledger.storage('lora', n * 4, `${name} ${what}`);
          const t = { name, n, param: buf('param'), grad: buf('grad'), m: buf('m'), v: buf('v') };
          device.queue.writeBuffer(t.param, 0, Float32Array.from(data));
          return t;
        };
        const pair = { module: mod, layer: l, target, A: tensor('A', p.A), B: tensor('B', p.B) };
        lora.pairs.push(pair);
        lora.weights.layers[l][target] = { A: pair.A.param, B: pair.B.param };
      }
    }
    return lora;
  }

  /** Clears the AdamW moments (a fresh optimizer). */
  resetOptimizer(): void {
    const enc = this.device.createCommandEncoder();
    for (const t of this.tensors) {
      enc.clearBuffer(t.m, 0, t.n * 4);
      enc.clearBuffer(t.v, 0, t.n * 4);
    }
    this.device.queue.submit([enc.finish()]);
  }

  /** The current parameters as a host adapter. */
  async download(): Promise<HostLora> {
    const out: HostLora = {};
    for (const p of this.pairs) {
      out[p.module] = {
        A: await readF32(this.device, p.A.param, p.A.n),
        B: await readF32(this.device, p.B.param, p.B.n),
        rank: this.rank,
        scale: this.scale,
      };
    }
    return out;
  }

  /** The accumulated gradients, by module. */
  async downloadGrads(): Promise<Record<string, { dA: Float32Array; dB: Float32Array }>> {
    const out: Record<string, { dA: Float32Array; dB: Float32Array }> = {};
    for (const p of this.pairs) {
      out[p.module] = {
        dA: await readF32(this.device, p.A.grad, p.A.n),
        dB: await readF32(this.device, p.B.grad, p.B.n),
      };
    }
    return out;
  }
}
