// The trainer worker: the one owner of the GPU device (a WebGPU device and its buffers cannot be shared
// between workers). A thin host: it gives the Lab (src/trainer/lab.ts) the browser's pieces — WebGPU,
// the model sources (tiny / hub into OPFS / picked files), IndexedDB, the verifier Web Worker — and
// exposes the typed API of src/protocol.ts through comlink.
import * as Comlink from 'comlink';
import { acquireDevice, NO_WEBGPU_HELP } from '../src/engine/gpu.ts';
import type { TrainerApi } from '../src/protocol.ts';
import { webWorkerFactory } from '../src/selfplay/verifier.ts';
import { IdbRunStore } from '../src/store/idb-store.ts';
import { requestPersistentStorage, storageReport } from '../src/store/storage-quota.ts';
import { createEngineTrainer } from '../src/trainer/engine-trainer.ts';
import { carriedUserError, Lab } from '../src/trainer/lab.ts';
import { ortWasmBase } from '../src/onnx/ort-assets.ts';
import { openModelChoice } from '../src/trainer/open-model.ts';
import { OpfsByteStore } from '../src/model/opfs-store.ts';

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
});

/** Errors that carry a UserError (what happened, what to do) reach the page as that UserError. */
function withUserErrors<T>(p: Promise<T>): Promise<T> {
  return p.catch((err: unknown) => {
    throw carriedUserError(err) ?? err;
  });
}

const api: TrainerApi = {
  async gpuStatus(req) {
    const s = await lab.gpuStatus(req);
    return s.ok ? s : { ...s, help: NO_WEBGPU_HELP };
  },
  checkMatmul: (M, N, K, seed) => lab.checkMatmul(M, N, K, seed),
  subscribe: (listener) => lab.subscribe(listener),
  loadModel: (choice) => lab.loadModel(choice),
  cancelLoad: () => lab.cancelLoad(),
  modelDownloadSize: (repo, revision, endpoint) => lab.modelDownloadSize(repo, revision, endpoint),
  listCachedModels: () => lab.listCachedModels(),
  memoryEstimate: (config) => lab.memoryEstimate(config),
  listRuns: () => lab.listRuns(),
  createRun: (config, name, preset) => lab.createRun(config, name, preset),
  startRun: (runId, seedSet) => lab.startRun(runId, seedSet),
  pauseRun: () => lab.pauseRun(),
  stopRun: () => lab.stopRun(),
  deleteRun: (runId) => lab.deleteRun(runId),
  getSteps: (runId) => lab.getSteps(runId),
  getEvals: (runId) => lab.getEvals(runId),
  getSamples: (runId, filter) => lab.getSamples(runId, filter),
  getBuffers: (runId) => lab.getBuffers(runId),
  runEval: (req) => withUserErrors(lab.runEval(req)),
  checkOnnx: (req) => withUserErrors(lab.checkOnnx(req)),
  benchDecode: (req) => lab.benchDecode(req),
  async exportOnnxFiles(variant) {
    const files = await withUserErrors(lab.exportOnnxFiles(variant));
    // Moved, not copied: the page holds the only copy while onnxruntime-web loads it.
    return Comlink.transfer(files, [files.model.buffer, files.data.buffer]);
  },
  listCheckpoints: (runId) => lab.listCheckpoints(runId),
  restoreCheckpoint: (runId, step) => lab.restoreCheckpoint(runId, step),
  exportRun: (runId, format) => lab.exportRun(runId, format),
  importArchive: (file) => lab.importArchive(file),
  compareRuns: (runIds, x) => lab.compareRuns(runIds, x),
  chat: (req) => lab.chat(req),
  storageInfo: () => lab.storageInfo(),
  tabHidden: () => lab.tabHidden(),
};

Comlink.expose(api);
