// What the trainer layer's parts share: a Trainer (the engine's training half), the platform a Lab runs
// on (browser worker or Node), and the loaded model. Types only, so no part imports the Lab back.
import type { RunConfig } from '../config.ts';
import type { Engine } from '../engine/engine.ts';
import type { GpuContext } from '../engine/gpu.ts';
import type { ByteStore } from '../model/byte-store.ts';
import type { DownloadProgress } from '../model/hub-client.ts';
import type { LoadedModel } from '../model/model-folder.ts';
import type { ModelSource } from '../model/model-source.ts';
import type { Policy } from '../policy.ts';
import type { GpuRequest, ModelChoice, ModelInfo, StorageInfo } from '../protocol.ts';
import type { VerifierWorkerFactory } from '../selfplay/verifier.ts';
import type { CheckpointTensor, JsonValue, RunStore } from '../store/types.ts';
import type { TrainableState } from './session.ts';

/** The training half of the engine, bound to one loaded model: Policy.step + checkpointable state. */
export interface Trainer {
  policy: Policy;
  trainable: TrainableState;
  /** The frozen base for the KL term (klBeta > 0); absent where the trainer keeps none (full fine-tuning). */
  referencePolicy?: Pick<Policy, 'logprobs'>;
  /** Run with the adapter disabled (the base model) or enabled. */
  setAdapterEnabled(on: boolean): void;
  dispose(): void;
}

export type TrainerFactory = (engine: Engine, config: RunConfig) => Promise<Trainer>;

export interface LabPlatform {
  acquireDevice(req: GpuRequest): Promise<GpuContext>;
  /** Where hub downloads are kept (OPFS in the browser). */
  modelStore(): ByteStore;
  openModel(
    choice: ModelChoice,
    opts: { onDownload: (p: DownloadProgress) => void; signal: AbortSignal },
  ): Promise<ModelSource>;
  store(): Promise<RunStore>;
  verifierFactory: VerifierWorkerFactory;
  storageInfo(): Promise<StorageInfo>;
  createTrainer: TrainerFactory;
  /** URL prefix of onnxruntime-web's WASM files (the app's `/ort/`); default: beside its module (Node). */
  onnxWasmPaths?: string;
  /** Hands large buffers to the caller without a copy (comlink's `transfer` in the worker). */
  transfer?<T>(value: T, transferables: Transferable[]): T;
  /** What to do when WebGPU is missing (the browser's own help text); appended to a failed GPU status. */
  noGpuHelp?: string;
}

/** The weights a call runs with: a run's checkpoint (its adapter), or none (the base model). */
export interface WeightsCheckpoint {
  runId: string;
  step: number;
  tensors: CheckpointTensor[];
  engineState: JsonValue;
}

/** The model the Lab holds: its source, its parsed folder, the engine it is uploaded to. */
export interface LoadedState {
  choice: ModelChoice;
  source: ModelSource;
  model: LoadedModel;
  engine: Engine;
  info: ModelInfo;
}
