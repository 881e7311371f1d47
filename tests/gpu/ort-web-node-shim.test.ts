// The bridge that lets onnxruntime-web's WebGPU EP run on Dawn in Node (the bench's default baseline):
// navigator.gpu exists, and writeBuffer accepts views of a SharedArrayBuffer (ort-web's WASM memory),
// with offsets and sizes counted in elements as WebGPU specifies.
import { describe, expect, it } from 'vitest';
import { readBuffer } from '../../src/engine/buffers.ts';
import { installWebGpuForOrtWeb } from '../../src/onnx/web-webgpu-node.ts';
import { getTestDevice } from '../helpers/gpu.ts';

describe('onnxruntime-web WebGPU in Node', () => {
  it('offers navigator.gpu and writes SharedArrayBuffer views', async () => {
    const device = await getTestDevice();
    installWebGpuForOrtWeb();
    expect(typeof (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu?.requestAdapter).toBe(
      'function',
    );
    const shared = new Float32Array(new SharedArrayBuffer(4 * 20));
    shared.forEach((_, i) => (shared[i] = i + 0.5));
    const buf = device.createBuffer({
      size: 64,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
    });
    // Elements 6..13 of a view that starts at element 2 of the shared memory: values 8.5 .. 15.5.
    // (WebGPU's types exclude shared views; ort-web's WASM glue passes them all the same.)
    device.queue.writeBuffer(buf, 16, shared.subarray(2) as unknown as Float32Array<ArrayBuffer>, 6, 8);
    // A plain (non-shared) write still goes straight through.
    device.queue.writeBuffer(buf, 0, Float32Array.of(-1, -2, -3, -4));
    const out = new Float32Array(await readBuffer(device, buf, 64));
    expect([...out]).toEqual([-1, -2, -3, -4, 8.5, 9.5, 10.5, 11.5, 12.5, 13.5, 14.5, 15.5, 0, 0, 0, 0]);
    buf.destroy();
  });
});
