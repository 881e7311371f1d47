// The LoRA adapter laid out for the decode GEMV's epilogue (kernels/gemv.ts), so that an adapter adds no
// dispatch to a decode step. The forward's weight matmuls are fused projections whose output columns
// are sub-projections side by side (q|k|v, gate|up) or a single one (o, down). For a fused projection
// the epilogue binds Acat [S·r, K] (the sub-projections' A stacked) and Bcat [N, r] (their B stacked
// along the output rows, which lines up with the concatenated output columns). A single projection
// binds its own A and B; the others get packed copies, booked under 'lora', whose sub-projections the
// adapter does not cover stay zero (adding exactly 0). The copies go stale when the per-module
// parameters change (AdamW updates them in place): `refresh` re-copies them, and the forward calls it
// on setLora and at the start of every generation call.
import type { LoraTarget } from '../config.ts';
import type { Qwen2Config } from '../model/qwen2-config.ts';
import type { GemvLora } from './kernels/gemv.ts';
import type { LoraWeights } from './lora-types.ts';
import type { MemoryLedger } from './memory.ts';

/** The forward's weight matmuls, by the sub-projections they concatenate. */
export type FusedProjection = 'qkv' | 'o' | 'gateUp' | 'down';

export interface ProjectionPart {
  target: LoraTarget;
  /** Output rows (columns of the fused output). */
  rows: number;
}

/** The sub-projections of a fused projection in output-column order, and its input width K. */
export function projectionParts(
  c: Qwen2Config,
  proj: FusedProjection,
): { parts: ProjectionPart[]; K: number } {
  const C = c.hiddenSize;
  const I = c.intermediateSize;
  const kv = c.numKeyValueHeads * c.headDim;
  switch (proj) {
    case 'qkv':
      return {
        parts: [
          { target: 'q_proj', rows: c.numAttentionHeads * c.headDim },
          { target: 'k_proj', rows: kv },
          { target: 'v_proj', rows: kv },
        ],
        K: C,
      };
    case 'o':
      return { parts: [{ target: 'o_proj', rows: C }], K: C };
    case 'gateUp':
      return {
        parts: [
          { target: 'gate_proj', rows: I },
          { target: 'up_proj', rows: I },
        ],
        K: C,
      };
    case 'down':
      return { parts: [{ target: 'down_proj', rows: C }], K: I };
  }
}

const PROJECTIONS: readonly FusedProjection[] = ['qkv', 'o', 'gateUp', 'down'];

/** A packed pair of a multi-part projection: Acat [S·r, K], Bcat [N, r]. */
interface Packed {
  A: GPUBuffer;
  B: GPUBuffer;
}

export class FusedLora {
  /** Per layer, the epilogue operands of each fused projection the adapter covers (absent = none). */
  layers: Partial<Record<FusedProjection, GemvLora>>[] = [];
  private lora: LoraWeights | null = null;
  /** By `${layer}.${projection}`. */
  private readonly packed = new Map<string, Packed>();
  private bytes = 0;

  private constructor(
    private readonly config: Qwen2Config,
    private readonly ledger: MemoryLedger,
    /** What the buffers depend on (rank and the covered modules): adapters with equal keys share them. */
    readonly layoutKey: string,
  ) {}

  static layoutKey(lora: LoraWeights): string {
    return `${lora.rank}:` + lora.layers.map((l) => Object.keys(l).sort().join(',')).join(';');
  }

  static create(device: GPUDevice, ledger: MemoryLedger, c: Qwen2Config, lora: LoraWeights): FusedLora {
    const fused = new FusedLora(c, ledger, FusedLora.layoutKey(lora));
    const r = lora.rank;
    lora.layers.forEach((pairs, l) => {
      for (const proj of PROJECTIONS) {
        const { parts, K } = projectionParts(c, proj);
        if (parts.length === 1 || !parts.some((p) => pairs[p.target])) continue;
        // WebGPU zero-initialises new buffers: sub-projections the adapter does not cover stay zero.
        const buf = (floats: number, what: string) => {
          const b = device.createBuffer({
            size: floats * 4,
            usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
            label: `L${l}.${proj} lora ${what} (packed)`,
          });
          fused.bytes += b.size;
          return b;
        };
        const N = parts.reduce((n, p) => n + p.rows, 0);
        fused.packed.set(`${l}.${proj}`, { A: buf(parts.length * r * K, 'A'), B: buf(N * r, 'B') });
      }
    });
    ledger.book('lora', fused.bytes);
    fused.bind(lora);
    return fused;
  }

  /** Points the operands at `lora` (same layoutKey), keeping the packed buffers; refresh() fills them. */
  bind(lora: LoraWeights): void {
    if (FusedLora.layoutKey(lora) !== this.layoutKey)
      throw new Error('FusedLora.bind needs an adapter of the same rank and modules as its buffers');
    this.lora = lora;
    this.layers = lora.layers.map((pairs, l) => {
      const layer: Partial<Record<FusedProjection, GemvLora>> = {};
      for (const proj of PROJECTIONS) {
        const { parts } = projectionParts(this.config, proj);
        const starts = parts.slice(1).map((_, s) => parts.slice(0, s + 1).reduce((n, p) => n + p.rows, 0));
        const op = { rank: lora.rank, scale: lora.scale, segmentStarts: starts };
        const packed = this.packed.get(`${l}.${proj}`);
        const single = parts.length === 1 ? pairs[parts[0].target] : undefined;
        if (packed) layer[proj] = { ...op, A: packed.A, B: packed.B };
        else if (single) layer[proj] = { ...op, A: single.A, B: single.B };
      }
      return layer;
    });
  }

  /** Copies the bound adapter's per-module parameters into the packed buffers. */
  refresh(enc: GPUCommandEncoder): void {
    const lora = this.lora;
    if (!lora) return;
    const r = lora.rank;
    for (const [key, packed] of this.packed) {
      const [l, proj] = key.split('.') as [string, FusedProjection];
      const { parts, K } = projectionParts(this.config, proj);
      let row0 = 0;
      parts.forEach((p, s) => {
        const pair = lora.layers[Number(l)][p.target];
        if (pair) {
          enc.copyBufferToBuffer(pair.A, 0, packed.A, s * r * K * 4, r * K * 4);
          enc.copyBufferToBuffer(pair.B, 0, packed.B, row0 * r * 4, p.rows * r * 4);
        }
        row0 += p.rows;
      });
    }
  }

  destroy(): void {
    for (const p of this.packed.values()) {
      p.A.destroy();
      p.B.destroy();
    }
    this.packed.clear();
    this.ledger.book('lora', -this.bytes);
    this.bytes = 0;
    this.lora = null;
    this.layers = [];
  }
}
