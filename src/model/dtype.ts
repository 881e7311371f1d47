// Tensor element types of safetensors files, and the f32 ↔ bf16 / f16 conversions the writer and
// the engine share. Browser-safe (no node: imports).

export type DType = 'F32' | 'F16' | 'BF16' | 'I64' | 'I32';

export const DTYPE_BYTES: Readonly<Record<DType, number>> = { F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4 };

export function isDType(s: unknown): s is DType {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(DTYPE_BYTES, s);
}

/** Floating dtypes a model's weights may be stored in. */
export type FloatDType = 'F32' | 'F16' | 'BF16';

/** Host float arrays (the reference runs in f32 or f64). */
export type FloatArray = Float32Array | Float64Array;

export function isFloatDType(s: unknown): s is FloatDType {
  return s === 'F32' || s === 'F16' || s === 'BF16';
}

/** CLI / config spelling (`bf16`) → safetensors spelling (`BF16`). */
export function parseFloatDType(s: string): FloatDType {
  const up = s.toUpperCase();
  if (isFloatDType(up)) return up;
  throw new Error(`unknown dtype "${s}" (expected bf16, f16 or f32)`);
}

// One shared scratch pair so scalar conversions do not allocate.
const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** f32 → bf16 bits, round to nearest, ties to even (what PyTorch does); NaN stays a quiet NaN. */
export function f32ToBf16Bits(x: number): number {
  scratchF32[0] = x;
  const bits = scratchU32[0];
  if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x007fffff) !== 0)
    return ((bits >>> 16) | 0x0040) & 0xffff;
  const roundingBias = 0x7fff + ((bits >>> 16) & 1);
  return ((bits + roundingBias) >>> 16) & 0xffff;
}

export function bf16BitsToF32(h: number): number {
  scratchU32[0] = (h & 0xffff) << 16;
  return scratchF32[0];
}

/** f32 → IEEE half bits, round to nearest even, with subnormals, ±Inf on overflow, NaN kept. */
export function f32ToF16Bits(x: number): number {
  scratchF32[0] = x;
  const bits = scratchU32[0];
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half (or zero): shift the implicit-1 mantissa right, rounding to nearest even.
    if (e < -10) return sign;
    const m = mant | 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = m & ((1 << shift) - 1);
    let out = m >>> shift;
    if (rest > half || (rest === half && (out & 1) === 1)) out += 1;
    return sign | out;
  }
  let out = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (up to Inf).
  if (rest > 0x1000 || (rest === 0x1000 && (out & 1) === 1)) out += 1;
  return sign | out;
}

export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

export function f32ToBf16(src: Float32Array, dst = new Uint16Array(src.length)): Uint16Array {
  const u = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) {
    const bits = u[i];
    if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x007fffff) !== 0) {
      dst[i] = ((bits >>> 16) | 0x0040) & 0xffff;
    } else {
      dst[i] = ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
    }
  }
  return dst;
}

export function bf16ToF32(src: Uint16Array, dst = new Float32Array(src.length)): Float32Array {
  const u = new Uint32Array(dst.buffer, dst.byteOffset, dst.length);
  for (let i = 0; i < src.length; i++) u[i] = src[i] << 16;
  return dst;
}

export function f32ToF16(src: Float32Array, dst = new Uint16Array(src.length)): Uint16Array {
  for (let i = 0; i < src.length; i++) dst[i] = f32ToF16Bits(src[i]);
  return dst;
}

export function f16ToF32(src: Uint16Array, dst = new Float32Array(src.length)): Float32Array {
  for (let i = 0; i < src.length; i++) dst[i] = f16BitsToF32(src[i]);
  return dst;
}

/** Little-endian bytes of f32 values in `dtype` (the machines we run on are little-endian, as is WebGPU). */
export function encodeFloats(values: Float32Array, dtype: FloatDType): Uint8Array {
  if (dtype === 'F32') return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const half = dtype === 'BF16' ? f32ToBf16(values) : f32ToF16(values);
  return new Uint8Array(half.buffer, half.byteOffset, half.byteLength);
}

/** Bytes of a float tensor (any float dtype) → f32 values. Copies, so `bytes` may be unaligned. */
export function decodeFloats(bytes: Uint8Array, dtype: FloatDType): Float32Array {
  const aligned = new Uint8Array(bytes);
  if (dtype === 'F32') return new Float32Array(aligned.buffer, 0, aligned.byteLength / 4);
  const half = new Uint16Array(aligned.buffer, 0, aligned.byteLength / 2);
  return dtype === 'BF16' ? bf16ToF32(half) : f16ToF32(half);
}
