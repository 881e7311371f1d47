// A test hook for device loss in Node: a real Dawn device whose `lost` promise the test resolves (reason
// 'unknown', as a crashed GPU process reports it, never 'destroyed', which the Lab ignores as its own
// doing), after which the real device is destroyed so every later GPU call fails, as on a real loss.
import type { GpuContext } from '../../src/engine/gpu.ts';
import { acquireNodeDevice } from '../../src/engine/node-gpu.ts';

export interface LossyContext {
  ctx: GpuContext;
  /** Reports the loss now and destroys the device a moment later (in-flight work sees the loss first). */
  lose(message?: string): void;
}

export async function lossyContext(): Promise<LossyContext> {
  const real = await acquireNodeDevice();
  let report: (info: GPUDeviceLostInfo) => void = () => undefined;
  const lost = new Promise<GPUDeviceLostInfo>((resolve) => (report = resolve));
  const device = new Proxy(real.device, {
    get(target, prop) {
      if (prop === 'lost') return lost;
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return {
    ctx: { ...real, device },
    lose(message = 'test hook: the GPU process went away') {
      report({ reason: 'unknown', message } as GPUDeviceLostInfo);
      setTimeout(() => real.device.destroy(), 50);
    },
  };
}
