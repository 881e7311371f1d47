// Runs the tiled matmul on a device and compares it with the reference: the worker's self-test and
// the proof that the kernel pipeline works end to end in a browser.
import { Dispatcher } from './dispatch.ts';
import { MatmulKernel } from './kernels/matmul.ts';
import { matmul } from './reference/matmul.ts';
import { readF32, storageBuffer, uploadF32 } from './buffers.ts';
import { mulberry32 } from '../random.ts';

export async function checkMatmulOnDevice(device: GPUDevice, M: number, N: number, K: number, seed: number) {
  const rng = mulberry32(seed);
  const a = Float32Array.from({ length: M * K }, () => rng() * 2 - 1);
  const b = Float32Array.from({ length: N * K }, () => rng() * 2 - 1);
  const want = new Float32Array(M * N);
  matmul(want, a, b, null, M, N, K, true);

  const kernel = new MatmulKernel(device, true);
  const dispatcher = new Dispatcher(device);
  const bufs = [uploadF32(device, a), uploadF32(device, b), storageBuffer(device, M * N * 4)];
  const t0 = performance.now();
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  dispatcher.dispatch(pass, 'matmul-check', kernel, { a: bufs[0], b: bufs[1], out: bufs[2], M, N, K });
  pass.end();
  device.queue.submit([enc.finish()]);
  const got = await readF32(device, bufs[2], M * N);
  const ms = performance.now() - t0;
  for (const buf of bufs) buf.destroy();
  dispatcher.clear();
  let maxAbsError = 0;
  for (let i = 0; i < got.length; i++) maxAbsError = Math.max(maxAbsError, Math.abs(got[i] - want[i]));
  return { M, N, K, maxAbsError, ms };
}
