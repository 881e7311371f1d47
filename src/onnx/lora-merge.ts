// Merging a LoRA adapter into base weights before export: W' = W + scale · B·A (PEFT layout,
// A [rank, in], B [out, rank], scale = alpha / rank), in f32 on the CPU. Keys are module names
// `model.layers.{i}.{projection}` — the reference forward's HostLora shape, so a trained adapter read
// back from the GPU exports as is. Browser-safe.

import { addLoraDelta } from '../export/merge.ts';
import type { Qwen2Config } from '../model/qwen2-config.ts';
import type { LoraPair } from '../model/lora.ts';

export type OnnxLoraPair = LoraPair;

/** LoRA pairs by module name (`model.layers.0.self_attn.q_proj`, ...). */
export type OnnxLora = Readonly<Record<string, OnnxLoraPair>>;

const MODULE = /^model\.layers\.(\d+)\.(self_attn\.[qkvo]_proj|mlp\.(gate|up|down)_proj)$/;

/** [out, in] of a projection. */
function projectionShape(c: Qwen2Config, proj: string): [number, number] {
  const h = c.hiddenSize;
  const kv = c.numKeyValueHeads * c.headDim;
  const I = c.intermediateSize;
  const shapes: Record<string, [number, number]> = {
    'self_attn.q_proj': [h, h],
    'self_attn.k_proj': [kv, h],
    'self_attn.v_proj': [kv, h],
    'self_attn.o_proj': [h, h],
    'mlp.gate_proj': [I, h],
    'mlp.up_proj': [I, h],
    'mlp.down_proj': [h, I],
  };
  return shapes[proj];
}

/** Throws naming the module when a key or a shape does not fit the model. */
export function validateLora(c: Qwen2Config, lora: OnnxLora): void {
  for (const [name, pair] of Object.entries(lora)) {
    const m = MODULE.exec(name);
    if (!m || Number(m[1]) >= c.numHiddenLayers)
      throw new Error(`LoRA: "${name}" is not a projection of this ${c.numHiddenLayers}-layer model`);
    const [out, inDim] = projectionShape(c, m[2]);
    if (!Number.isSafeInteger(pair.rank) || pair.rank <= 0)
      throw new Error(`LoRA ${name}: rank must be a positive integer`);
    if (pair.A.length !== pair.rank * inDim)
      throw new Error(`LoRA ${name}: A has ${pair.A.length} values, expected rank ${pair.rank} × ${inDim}`);
    if (pair.B.length !== out * pair.rank)
      throw new Error(`LoRA ${name}: B has ${pair.B.length} values, expected ${out} × rank ${pair.rank}`);
    if (!Number.isFinite(pair.scale)) throw new Error(`LoRA ${name}: scale must be finite`);
  }
}

/** W [out, in] + scale · B·A, as a new f32 array (the exports' merge: accumulated in f64, rounded once). */
export function mergeLora(W: Float32Array, inDim: number, pair: OnnxLoraPair): Float32Array {
  const merged = W.slice();
  addLoraDelta(merged, 0, inDim, pair);
  return merged;
}
