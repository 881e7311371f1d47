// Node's navigator.gpu: the npm package `webgpu` (Dawn). Node-only; the browser uses navigator.gpu.
import { create, globals } from 'webgpu';
import { acquireDevice, type DeviceOptions, type GpuContext } from './gpu.ts';
import { DAWN_LIMIT_WARNING, withNativeStderrFiltered } from './native-stderr.ts';

export interface NodeDeviceOptions extends DeviceOptions {
  /** Dawn toggles / backend selection, e.g. ['backend=opengles'] for GL compat (TESTING.md). */
  dawnOptions?: string[];
}

let filterLimitWarnings = false;
/**
 * The CLI's choice (off with `tabzero --verbose`): filter Dawn's native limit warnings out of stderr while
 * a device is acquired (native-stderr.ts). Library users and tests see stderr untouched.
 */
export function filterDawnWarnings(on: boolean): void {
  filterLimitWarnings = on;
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
  if (!filterLimitWarnings) return acquireDevice(gpu, opts);
  return withNativeStderrFiltered(DAWN_LIMIT_WARNING, () => acquireDevice(gpu, opts));
}
