// The trainer worker: the one owner of the GPU device (a WebGPU device and its buffers cannot be shared
// between workers). A thin host: it gives the Lab (src/trainer/lab.ts) the browser's pieces — WebGPU,
// the model sources (tiny / hub into OPFS / picked files), IndexedDB, the verifier Web Worker — and
// exposes the Lab, which implements the typed API of src/protocol.ts, through comlink.
import * as Comlink from 'comlink';
import { acquireDevice, NO_WEBGPU_HELP } from '../src/engine/gpu.ts';
import { webWorkerFactory } from '../src/selfplay/verifier.ts';
import { IdbRunStore } from '../src/store/idb-store.ts';
import { requestPersistentStorage, storageReport } from '../src/store/storage-quota.ts';
import { createEngineTrainer } from '../src/trainer/engine-trainer.ts';
import { Lab } from '../src/trainer/lab.ts';
import { ortWasmBase } from '../src/onnx/ort-assets.ts';
import { openModelChoice } from '../src/trainer/open-model.ts';
import { OpfsByteStore } from '../src/model/opfs-store.ts';
import { reportViolations } from '../src/app/lib/content-security-policy.ts';

reportViolations(self);

const modelStore = new OpfsByteStore();

const lab = new Lab({
  modelStore: () => modelStore,
  acquireDevice: (req) => acquireDevice(navigator.gpu, req),
  openModel: (choice, opts) => openModelChoice(choice, { ...opts, store: modelStore }),
  store: async () => {
    await requestPersistentStorage();
    return IdbRunStore.open();
  },
  verifierFactory: webWorkerFactory(
    () => new Worker(new URL('./verifier.worker.ts', import.meta.url), { type: 'module', name: 'verifier' }),
  ),
  storageInfo: async () => {
    const r = await storageReport();
    return { usage: r.usage ?? 0, quota: r.quota ?? 0, persisted: r.persisted ?? false };
  },
  createTrainer: createEngineTrainer,
  // The app's own copy of onnxruntime-web's WASM files (scripts/vite-ort-plugin.ts), never a CDN.
  onnxWasmPaths: ortWasmBase(import.meta.env.BASE_URL, self.location.href),
  transfer: Comlink.transfer,
  noGpuHelp: NO_WEBGPU_HELP,
});

Comlink.expose(lab);
