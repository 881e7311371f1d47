// Reads a model's safetensors tensors into reference weights (f32 or f64), by HF name. For tiny models
// and CLI checks: the whole model is held in JS arrays. Browser-safe.

import { decodeFloats, f16ToF32, f32ToF16, isFloatDType } from '../../model/dtype.ts';
import type { SafetensorsFile } from '../../model/safetensors-read.ts';
import type { FloatArray } from './ops.ts';
import type { RefWeights } from './qwen2.ts';
import type { RefDType } from './random.ts';

export interface RefLoadOptions {
  /** Precision of the JS arrays. */
  dtype: RefDType;
  /** Round every weight to f16 first (what the GPU's f16 weight path sees). */
  roundToF16?: boolean;
}

export async function loadRefWeights(
  file: SafetensorsFile,
  names: readonly string[],
  opts: RefLoadOptions,
): Promise<RefWeights> {
  const out: RefWeights = {};
  for (const name of names) {
    const info = file.tensor(name);
    if (!isFloatDType(info.dtype))
      throw new Error(`${file.fileName}: ${name} has dtype ${info.dtype}, not a float`);
    let f32 = decodeFloats(await file.read(name), info.dtype);
    if (opts.roundToF16) f32 = f16ToF32(f32ToF16(f32));
    const arr: FloatArray = opts.dtype === 'f64' ? Float64Array.from(f32) : f32;
    out[name] = arr;
  }
  return out;
}
