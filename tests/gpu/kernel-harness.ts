// Runs one kernel through a fresh Dispatcher and reads a buffer back (forward kernel tests).
import { Dispatcher, type Kernel } from '../../src/engine/dispatch.ts';
import { readBuffer, storageBuffer, uploadF32 } from '../../src/engine/buffers.ts';

export async function runKernel<A>(device: GPUDevice, kernel: Kernel<A>, args: A): Promise<void> {
  const d = new Dispatcher(device);
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  d.dispatch(pass, 'test', kernel, args);
  pass.end();
  device.queue.submit([enc.finish()]);
  await device.queue.onSubmittedWorkDone();
  d.clear();
}

export function uploadU32(device: GPUDevice, data: ArrayLike<number>): GPUBuffer {
  const a = Uint32Array.from(data);
  const buf = storageBuffer(device, a.byteLength);
  device.queue.writeBuffer(buf, 0, a);
  return buf;
}

export function uploadBytes(device: GPUDevice, bytes: Uint8Array): GPUBuffer {
  const padded = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
  padded.set(bytes);
  const buf = storageBuffer(device, padded.byteLength);
  device.queue.writeBuffer(buf, 0, padded);
  return buf;
}

export async function readU32(device: GPUDevice, buf: GPUBuffer, n: number): Promise<Uint32Array> {
  return new Uint32Array(await readBuffer(device, buf, n * 4));
}

export { uploadF32, storageBuffer };
