// One Dawn device per test file (Mesa lavapipe in CI: core mode, shader-f16, subgroups).
import { acquireNodeDevice, type NodeDeviceOptions } from '../../src/engine/node-gpu.ts';
import type { GpuContext } from '../../src/engine/gpu.ts';
import { mulberry32 } from '../../src/random.ts';

const cache = new Map<string, Promise<GpuContext>>();

export function getTestContext(opts: NodeDeviceOptions = {}): Promise<GpuContext> {
  const key = JSON.stringify(opts);
  let ctx = cache.get(key);
  if (!ctx) {
    ctx = acquireNodeDevice(opts);
    cache.set(key, ctx);
  }
  return ctx;
}

export async function getTestDevice(opts: NodeDeviceOptions = {}): Promise<GPUDevice> {
  return (await getTestContext(opts)).device;
}

/** Deterministic pseudo-random floats in [-scale, scale) (mulberry32), for test inputs. */
export function randomF32(n: number, seed: number, scale = 1): Float32Array {
  const next = mulberry32(seed);
  return Float32Array.from({ length: n }, () => (next() * 2 - 1) * scale);
}

/** Largest |a − b| / (atol + rtol·|b|) > 1 is a failure; returns the largest absolute error too. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
