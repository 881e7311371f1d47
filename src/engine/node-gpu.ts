// Node's navigator.gpu: the npm package `webgpu` (Dawn). Node-only; the browser uses navigator.gpu.
import { create, globals } from 'webgpu';
import { acquireDevice, type DeviceOptions, type GpuContext } from './gpu.ts';

export interface NodeDeviceOptions extends DeviceOptions {
  /** Dawn toggles / backend selection, e.g. ['backend=opengles'] for GL compat (TESTING.md). */
  dawnOptions?: string[];
}

let installed = false;
// Dawn's instance must outlive every device made from it: if the GC collects it, the device's event
// processing breaks (futex / mutex aborts inside Dawn). Keep every instance we create reachable.
const instances: GPU[] = [];

export async function acquireNodeDevice(opts: NodeDeviceOptions = {}): Promise<GpuContext> {
  if (!installed) {
    // GPUBufferUsage, GPUMapMode, ... as globals, the way browsers expose them.
    Object.assign(globalThis, globals);
    installed = true;
  }
  const gpu = create(opts.dawnOptions ?? []);
  instances.push(gpu);
  return acquireDevice(gpu, opts);
}
