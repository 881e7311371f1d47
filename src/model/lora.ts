// LoRA on the host side: PEFT tensor naming, PEFT's default initialisation (A Kaiming-uniform, B zero),
// and load/save of adapters as safetensors in PEFT naming. The host LoRA format is defined here (HostLora:
// module name → {A [r, in], B [out, r], rank, scale}); export, ONNX, the trainer and the CPU reference
// all use it. Browser-safe (no GPU here: see engine/lora-gpu.ts).

import type { LoraTarget } from '../config.ts';
import { uniformSource } from '../random.ts';
import { bytesSource } from './byte-source.ts';
import { decodeFloats, encodeFloats, isFloatDType, type FloatArray } from './dtype.ts';
import type { Qwen2Config } from './qwen2-config.ts';
import { openSafetensors } from './safetensors-read.ts';
import { encodeSafetensors } from './safetensors-write.ts';

/** The model fields a LoRA's shapes depend on. */
export type LoraShapeConfig = Pick<
  Qwen2Config,
  'hiddenSize' | 'numHiddenLayers' | 'numKeyValueHeads' | 'headDim' | 'intermediateSize'
>;

/** A LoRA pair on one linear layer: y += scale · (x Aᵀ) Bᵀ, with A [r, in], B [out, r] (PEFT layout). */
export interface LoraPair {
  A: FloatArray;
  B: FloatArray;
  rank: number;
  /** alpha / r. */
  scale: number;
}

/** The seven projections LoRA may target, with the HF module path inside a layer. */
export const PROJECTIONS = [
  'self_attn.q_proj',
  'self_attn.k_proj',
  'self_attn.v_proj',
  'self_attn.o_proj',
  'mlp.gate_proj',
  'mlp.up_proj',
  'mlp.down_proj',
] as const;
export type Projection = (typeof PROJECTIONS)[number];

/** LoRA pairs by module name `model.layers.{i}.{projection}` (e.g. `model.layers.0.mlp.up_proj`). */
export type HostLora = Record<string, LoraPair>;

export function moduleName(layer: number, proj: Projection): string {
  return `model.layers.${layer}.${proj}`;
}

/** [out, in] of each projection. */
export function projectionShape(cfg: LoraShapeConfig, proj: Projection): [number, number] {
  const C = cfg.hiddenSize;
  const kv = cfg.numKeyValueHeads * cfg.headDim;
  const I = cfg.intermediateSize;
  switch (proj) {
    case 'self_attn.q_proj':
    case 'self_attn.o_proj':
      return [C, C];
    case 'self_attn.k_proj':
    case 'self_attn.v_proj':
      return [kv, C];
    case 'mlp.gate_proj':
    case 'mlp.up_proj':
      return [I, C];
    case 'mlp.down_proj':
      return [C, I];
  }
}

/** The HF module path of each LoRA target inside a decoder layer. */
export const TARGET_PROJECTION: Readonly<Record<LoraTarget, Projection>> = {
  q_proj: 'self_attn.q_proj',
  k_proj: 'self_attn.k_proj',
  v_proj: 'self_attn.v_proj',
  o_proj: 'self_attn.o_proj',
  gate_proj: 'mlp.gate_proj',
  up_proj: 'mlp.up_proj',
  down_proj: 'mlp.down_proj',
};

/** PEFT's prefix for a LoraModel wrapping a CausalLM (`base_model.model.` + the HF module path). */
export const PEFT_PREFIX = 'base_model.model.';

/** `base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight` (or lora_B). */
export function peftTensorName(module: string, which: 'A' | 'B'): string {
  return `${PEFT_PREFIX}${module}.lora_${which}.weight`;
}

const PEFT_NAME =
  /^base_model\.model\.(model\.layers\.(\d+)\.(self_attn\.[qkvo]_proj|mlp\.(?:gate|up|down)_proj))\.lora_([AB])\.weight$/;

/** Parses a PEFT LoRA tensor name; null for anything else. */
export function parsePeftName(
  name: string,
): { module: string; layer: number; projection: Projection; which: 'A' | 'B' } | null {
  const m = PEFT_NAME.exec(name);
  if (!m) return null;
  return { module: m[1], layer: Number(m[2]), projection: m[3] as Projection, which: m[4] as 'A' | 'B' };
}

export interface LoraSpec {
  rank: number;
  alpha: number;
  targets: readonly LoraTarget[];
}

/**
 * A fresh adapter as PEFT makes it: A ~ kaiming_uniform_(a=√5), i.e. U(−1/√in, 1/√in), and B = 0, so
 * the adapted model starts equal to the base. Deterministic for a seed.
 */
export function initLora(cfg: LoraShapeConfig, spec: LoraSpec, seed: number): HostLora {
  const next = uniformSource(seed);
  const lora: HostLora = {};
  for (let l = 0; l < cfg.numHiddenLayers; l++) {
    for (const target of spec.targets) {
      const proj = TARGET_PROJECTION[target];
      const [out, inp] = projectionShape(cfg, proj);
      const bound = 1 / Math.sqrt(inp);
      const A = new Float32Array(spec.rank * inp);
      for (let i = 0; i < A.length; i++) A[i] = bound * next();
      lora[moduleName(l, proj)] = {
        A,
        B: new Float32Array(out * spec.rank),
        rank: spec.rank,
        scale: spec.alpha / spec.rank,
      };
    }
  }
  return lora;
}

/**
 * Checks every pair against the model's shapes; throws naming the tensor, its shape and the model's
 * (an adapter of another base model). `what`: the adapter in the message (its file).
 */
export function checkLoraShapes(cfg: LoraShapeConfig, lora: HostLora, what?: string): void {
  function refuse(problem: string): never {
    throw new Error(
      `${what ? `${what}: ` : ''}${problem}: the adapter belongs to another base model; use it with the model it was trained on.`,
    );
  }
  for (const [mod, p] of Object.entries(lora)) {
    const parsed = parsePeftName(peftTensorName(mod, 'A'));
    if (!parsed || parsed.layer >= cfg.numHiddenLayers)
      refuse(`LoRA module ${mod} is not in this model (it has ${cfg.numHiddenLayers} layers)`);
    const [out, inp] = projectionShape(cfg, parsed.projection);
    const proj = parsed.projection.slice(parsed.projection.indexOf('.') + 1);
    if (p.A.length !== p.rank * inp)
      refuse(
        `${peftTensorName(mod, 'A')} is [${p.rank}, ${p.A.length / p.rank}], but this model's ${proj} takes [${p.rank}, ${inp}]`,
      );
    if (p.B.length !== out * p.rank)
      refuse(
        `${peftTensorName(mod, 'B')} is [${p.B.length / p.rank}, ${p.rank}], but this model's ${proj} takes [${out}, ${p.rank}]`,
      );
  }
}

/**
 * Reads a PEFT adapter (`adapter_model.safetensors` bytes): every module needs both A [r, in] and
 * B [out, r] (f32/f16/bf16, read into f32); scale = alpha / r per module. Other tensors are refused.
 */
export async function loadPeftLora(
  bytes: Uint8Array,
  alpha: number,
  cfg: LoraShapeConfig,
  fileName = 'adapter',
): Promise<HostLora> {
  const file = await openSafetensors(bytesSource(bytes, fileName), fileName);
  const parts = new Map<
    string,
    { A?: { data: Float32Array; shape: number[] }; B?: { data: Float32Array; shape: number[] } }
  >();
  for (const t of file.tensors) {
    const parsed = parsePeftName(t.name);
    if (!parsed) throw new Error(`${fileName}: ${t.name} is not a PEFT LoRA tensor name`);
    if (!isFloatDType(t.dtype)) throw new Error(`${fileName}: ${t.name} has dtype ${t.dtype}`);
    if (t.shape.length !== 2) throw new Error(`${fileName}: ${t.name} must be 2-D`);
    const entry = parts.get(parsed.module) ?? {};
    entry[parsed.which] = { data: decodeFloats(await file.read(t.name), t.dtype), shape: t.shape };
    parts.set(parsed.module, entry);
  }
  const lora: HostLora = {};
  for (const [mod, { A, B }] of parts) {
    if (!A || !B) throw new Error(`${fileName}: ${mod} needs both lora_A and lora_B`);
    const rank = A.shape[0];
    if (B.shape[1] !== rank)
      throw new Error(`${fileName}: ${mod} has lora_A rank ${rank} but lora_B [${B.shape}]`);
    lora[mod] = { A: A.data, B: B.data, rank, scale: alpha / rank };
  }
  checkLoraShapes(cfg, lora, fileName);
  return lora;
}

/** PEFT-named safetensors of per-module A/B tensors (f32): adapters, or their gradients. */
export async function encodePeftTensors(
  cfg: LoraShapeConfig,
  modules: Record<string, { A: FloatArray; B: FloatArray; rank: number }>,
  extra: { name: string; data: Float32Array; shape: number[] }[] = [],
): Promise<Uint8Array> {
  const tensors: { name: string; dtype: 'F32'; shape: number[]; data: Uint8Array }[] = [];
  for (const [mod, p] of Object.entries(modules)) {
    const parsed = parsePeftName(peftTensorName(mod, 'A'));
    if (!parsed) throw new Error(`not a LoRA module: ${mod}`);
    const [out, inp] = projectionShape(cfg, parsed.projection);
    tensors.push({
      name: peftTensorName(mod, 'A'),
      dtype: 'F32',
      shape: [p.rank, inp],
      data: encodeFloats(Float32Array.from(p.A), 'F32'),
    });
    tensors.push({
      name: peftTensorName(mod, 'B'),
      dtype: 'F32',
      shape: [out, p.rank],
      data: encodeFloats(Float32Array.from(p.B), 'F32'),
    });
  }
  for (const e of extra)
    tensors.push({ name: e.name, dtype: 'F32', shape: e.shape, data: encodeFloats(e.data, 'F32') });
  return encodeSafetensors(tensors);
}

/** Saves an adapter in PEFT naming (f32). */
export function savePeftLora(cfg: LoraShapeConfig, lora: HostLora): Promise<Uint8Array> {
  return encodePeftTensors(cfg, lora);
}
