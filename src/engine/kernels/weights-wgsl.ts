// WGSL snippets for reading weights stored as f32 or as 16-bit values (f16 or bf16, two per 32-bit word).
// The bytes are the same on every path; only how a shader reads them differs:
//  - portable (no `shader-f16`): the words are bound as array<u32> and unpacked to f32 (f16 with
//    unpack2x16float, bf16 by a shift: it is the top half of an f32), arithmetic in f32;
//  - `shader-f16` and f16 weights: bound as array<f16> (or vec2/vec4<f16>: identical memory) and the
//    weight kernels multiply in f16, folding short f16 partial sums into f32 accumulators
//    (see `weightArithmetic`; matmul.ts and gemv.ts state the error this costs).
// bf16 weights always take the f32 path: f16 has no bf16 form (bf16's 8-bit exponent overflows f16's 5).
//
// Reference: none of its own (WGSL helpers); the tests round weights with decodeFloats (src/model/dtype.ts).
// Tests: tests/unit/engine/gpu.test.ts (weightArithmetic), tests/gpu/forward-kernels.test.ts (every weight
//   kernel at f32 / f16 / bf16), tests/gpu/qwen2-forward.test.ts (16-bit and shader-f16 paths).

import type { ShaderFeatures } from '../gpu.ts';

export type WeightDType = 'f32' | 'f16' | 'bf16';

/** The precision weight kernels multiply in. */
export type Arithmetic = 'f32' | 'f16';

export const WEIGHT_DTYPE_BYTES: Readonly<Record<WeightDType, number>> = { f32: 4, f16: 2, bf16: 2 };

/** f16 multiplies only for f16 weights on a device with `shader-f16`; everything else computes in f32. */
export function weightArithmetic(dtype: WeightDType, features: ShaderFeatures): Arithmetic {
  return dtype === 'f16' && features.f16 ? 'f16' : 'f32';
}

/** The `enable` directives a shader needs (they must come before any declaration). */
export function enables(f16: boolean, subgroups = false): string {
  return `${f16 ? 'enable f16;\n' : ''}${subgroups ? 'enable subgroups;\n' : ''}`;
}

/**
 * Storage binding declaration for a weight array named `name`; `nativeF16` (f16 weights on a
 * `shader-f16` device) declares it array<f16> over the same bytes (the shader must `enable f16`).
 */
export function weightDecl(
  binding: number,
  name: string,
  dtype: WeightDType,
  group = 0,
  nativeF16 = false,
): string {
  const elem = dtype === 'f32' ? 'f32' : nativeF16 && dtype === 'f16' ? 'f16' : 'u32';
  return `@group(${group}) @binding(${binding}) var<storage, read> ${name}: array<${elem}>;`;
}

/** A WGSL function `fnName(i: u32) -> f32` returning element i of weight array `name` (exact). */
export function weightLoadFn(fnName: string, name: string, dtype: WeightDType, nativeF16 = false): string {
  if (dtype === 'f32') return `fn ${fnName}(i: u32) -> f32 { return ${name}[i]; }`;
  if (dtype === 'f16') {
    if (nativeF16) return `fn ${fnName}(i: u32) -> f32 { return f32(${name}[i]); }`;
    return `fn ${fnName}(i: u32) -> f32 { return unpack2x16float(${name}[i >> 1u])[i & 1u]; }`;
  }
  return `fn ${fnName}(i: u32) -> f32 {
  let w = ${name}[i >> 1u];
  return bitcast<f32>(select(w << 16u, w & 0xffff0000u, (i & 1u) == 1u));
}`;
}
