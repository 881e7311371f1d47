// WGSL snippets for reading weights stored as f32 or as 16-bit values packed two per u32 (f16 or bf16).
// Packed storage works on every adapter (no `shader-f16` needed): f16 unpacks with unpack2x16float,
// bf16 is the top half of an f32 (a shift). Arithmetic stays f32 either way.

export type WeightDType = 'f32' | 'f16' | 'bf16';

export const WEIGHT_DTYPE_BYTES: Readonly<Record<WeightDType, number>> = { f32: 4, f16: 2, bf16: 2 };

/** Storage binding declaration for a weight array named `name`. */
export function weightDecl(binding: number, name: string, dtype: WeightDType, group = 0): string {
  const elem = dtype === 'f32' ? 'f32' : 'u32';
  return `@group(${group}) @binding(${binding}) var<storage, read> ${name}: array<${elem}>;`;
}

/** A WGSL function `fnName(i: u32) -> f32` returning element i of weight array `name`. */
export function weightLoadFn(fnName: string, name: string, dtype: WeightDType): string {
  if (dtype === 'f32') return `fn ${fnName}(i: u32) -> f32 { return ${name}[i]; }`;
  if (dtype === 'f16') {
    return `fn ${fnName}(i: u32) -> f32 { return unpack2x16float(${name}[i >> 1u])[i & 1u]; }`;
  }
  return `fn ${fnName}(i: u32) -> f32 {
  let w = ${name}[i >> 1u];
  return bitcast<f32>(select(w << 16u, w & 0xffff0000u, (i & 1u) == 1u));
}`;
}
