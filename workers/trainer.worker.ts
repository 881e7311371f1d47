// The trainer worker: the one owner of the GPU device (a WebGPU device and its buffers cannot be shared
// between workers). The UI talks to it only through the comlink API typed in src/protocol.ts.
import * as Comlink from 'comlink';
import { acquireDevice, NO_WEBGPU_HELP, type GpuContext } from '../src/engine/gpu.ts';
import { checkMatmulOnDevice } from '../src/engine/matmul-check.ts';
import type { GpuRequest, GpuStatus, TrainerApi, TrainerEvent } from '../src/protocol.ts';

let context: Promise<GpuContext> | null = null;
const listeners: ((event: TrainerEvent) => void)[] = [];

function emit(event: TrainerEvent): void {
  for (const listener of listeners) listener(event);
}

function device(req: GpuRequest = {}): Promise<GpuContext> {
  if (!context) {
    context = acquireDevice(navigator.gpu, req).then((ctx) => {
      ctx.device.lost.then((info) => {
        context = null;
        emit({
          type: 'device-lost',
          reason: info.reason,
          message: `The GPU device was lost (${info.reason}: ${info.message}). It will be re-acquired on the next request.`,
          recovering: false,
        });
      });
      return ctx;
    });
    context.catch(() => (context = null));
  }
  return context;
}

// Grows into the whole TrainerApi as the trainer lands (issue 7).
const api: Pick<TrainerApi, 'gpuStatus' | 'checkMatmul' | 'subscribe'> = {
  async gpuStatus(req?: GpuRequest): Promise<GpuStatus> {
    try {
      return { ok: true, report: (await device(req)).report };
    } catch (err) {
      return { ok: false, error: err instanceof Error ? err.message : String(err), help: NO_WEBGPU_HELP };
    }
  },
  async checkMatmul(M, N, K, seed) {
    return checkMatmulOnDevice((await device()).device, M, N, K, seed);
  },
  subscribe(listener) {
    listeners.push(listener);
  },
};

Comlink.expose(api);
