// What the page shows of models: a loaded model's identity and shape, the GPU memory its engine holds,
// and which hub models the local cache holds.
import type { Engine } from '../engine/engine.ts';
import type { LoadedModel } from '../model/model-folder.ts';
import { parameterCount } from '../model/qwen2-config.ts';
import type { ByteStore } from '../model/byte-store.ts';
import { DEFAULT_HUB_ENDPOINT, storeKey } from '../model/hub-client.ts';
import type { CachedModel, MemoryReport, ModelInfo } from '../protocol.ts';

export function measuredMemory(engine: Engine): MemoryReport {
  const m = engine.memory();
  return {
    weights: m.weights,
    kvCache: m.kvCache,
    activations: m.activations,
    training: m.lora,
    scratch: m.scratch,
    total: m.total,
    maxBufferSize: engine.ctx.report.limits.maxBufferSize,
    fits: true,
    note: 'measured: buffers allocated on the device',
  };
}

export function modelInfo(model: LoadedModel, engine: Engine): ModelInfo {
  const c = model.config;
  const weights = model.weights;
  const dtypes = new Set(weights.tensors.map((t) => t.dtype));
  return {
    id: `${model.identity.repo}@${model.identity.revision}`,
    repo: model.identity.repo,
    revision: model.identity.revision,
    sha256: model.identity.sha256,
    layers: c.numHiddenLayers,
    hidden: c.hiddenSize,
    heads: c.numAttentionHeads,
    kvHeads: c.numKeyValueHeads,
    vocab: c.vocabSize,
    parameters: parameterCount(c),
    fileDtype: [...dtypes].join('+'),
    runDtype: engine.weights.dtype === 'f32' ? 'f32' : 'f16',
    weightBytes: engine.memory().weights,
  };
}

/** Which of these hub models the local cache holds (deduplicated), with their stored bytes. */
export async function cachedHubModels(
  store: ByteStore,
  models: { repo: string; revision: string }[],
): Promise<CachedModel[]> {
  const unique = new Map(models.map((m) => [`${m.repo}@${m.revision}`, m]));
  const out: CachedModel[] = [];
  for (const { repo, revision } of unique.values()) {
    const key = storeKey({ endpoint: DEFAULT_HUB_ENDPOINT, repo, revision, file: 'model.safetensors' });
    const meta = await store.readMeta(key);
    const bytes = await store.size(key);
    if (meta || bytes) out.push({ repo, revision, bytes: bytes ?? 0, complete: meta?.complete ?? false });
  }
  return out;
}
