// The typed API of workers/trainer.worker.ts (comlink) and the events it sends: the single source of
// truth for messages between the UI and the worker that owns the GPU device.
import type { AdapterReport } from './engine/gpu.ts';

/** What the GPU panel shows: the adapter the worker's device came from, or why there is none. */
export type GpuStatus = { ok: true; report: AdapterReport } | { ok: false; error: string; help: string };

export interface GpuRequest {
  /** Ask for a compatibility-mode adapter (WebGPU compat: GL / D3D11). */
  compatibility?: boolean;
}

/** Result of the in-worker matmul self-test (the first real kernel, checked against the reference). */
export interface MatmulCheck {
  M: number;
  N: number;
  K: number;
  maxAbsError: number;
  /** GPU wall time of the dispatch, including the readback. */
  ms: number;
}

/** Events the worker pushes to subscribers. Later issues add progress, step metrics and samples. */
export type TrainerEvent =
  | { type: 'device-lost'; reason: string; message: string }
  | { type: 'log'; level: 'info' | 'warn' | 'error'; message: string };

export interface TrainerApi {
  /** Acquire (or return) the worker's one GPU device and report it. */
  gpuStatus(req?: GpuRequest): Promise<GpuStatus>;
  /** Run the tiled f32 matmul on the worker's device against the reference, on seeded random inputs. */
  checkMatmul(M: number, N: number, K: number, seed: number): Promise<MatmulCheck>;
  /** Register a callback for events (a comlink proxy on the UI side). */
  subscribe(listener: (event: TrainerEvent) => void): void;
}
