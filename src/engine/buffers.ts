// Small helpers for moving data to and from the GPU (tests, the CLI and one-off uploads; the hot paths
// use preallocated buffers and read back only a few bytes per step).

export function uploadF32(device: GPUDevice, data: Float32Array, usage = 0, label?: string): GPUBuffer {
  const buf = device.createBuffer({
    size: Math.max(16, align4(data.byteLength)),
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC | usage,
    label,
  });
  device.queue.writeBuffer(buf, 0, data.buffer, data.byteOffset, data.byteLength);
  return buf;
}

export function storageBuffer(device: GPUDevice, byteLength: number, label?: string): GPUBuffer {
  return device.createBuffer({
    size: Math.max(16, align4(byteLength)),
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
    label,
  });
}

/** Copies `byteLength` bytes of `src` to a staging buffer and maps it: one readback. */
export async function readBuffer(
  device: GPUDevice,
  src: GPUBuffer,
  byteLength: number,
): Promise<ArrayBuffer> {
  const size = align4(byteLength);
  const staging = device.createBuffer({ size, usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ });
  const enc = device.createCommandEncoder();
  enc.copyBufferToBuffer(src, 0, staging, 0, size);
  device.queue.submit([enc.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const out = staging.getMappedRange().slice(0, byteLength);
  staging.unmap();
  staging.destroy();
  return out;
}

export async function readF32(device: GPUDevice, src: GPUBuffer, count: number): Promise<Float32Array> {
  return new Float32Array(await readBuffer(device, src, count * 4));
}

export function align4(n: number): number {
  return Math.ceil(n / 4) * 4;
}
