// Exports of a run's committed state, shared by the app (a zip in the browser) and `tabzero export`
// (a folder or a zip in Node): the merged HF model, the PEFT adapter, JSONL, and ONNX for transformers.js.
// The run archive is the store's (src/store/archive.ts).
import { exportJsonl } from '../export/jsonl.ts';
import { provenanceFromRun } from '../export/manifest.ts';
import { exportMergedModel } from '../export/merged-model.ts';
import { exportPeftAdapter } from '../export/peft-adapter.ts';
import type { LoadedModel } from '../model/model-folder.ts';
import type { FolderSink, ModelSource } from '../model/model-source.ts';
import { checkSameModel } from '../store/identity.ts';
import type { RunReader } from '../store/types.ts';
import { checkpointAdapter } from './engine-trainer.ts';
import { isFullCheckpoint, writeFullModelFolder } from './full-weights.ts';

export type FolderExportFormat = 'hf' | 'peft' | 'jsonl' | 'onnx';

export interface RunExportOptions {
  /** The run's base model: needed for hf and onnx (the merge) and peft (the shapes). */
  base?: { source: ModelSource; model: LoadedModel };
  /** Merged weights in the base's dtype (default) or f32 (a bf16 merge rounds away much of a small delta). */
  dtype?: 'base' | 'f32';
  /** PEFT's base_model_name_or_path (default: the run's base repo). */
  baseModelNameOrPath?: string;
  tabzeroVersion: string;
  onProgress?: (done: number, total: number, name: string) => void;
}

function needBase(opts: RunExportOptions, want: string, repo: string) {
  if (!opts.base) throw new Error(`exporting ${want} needs the run's base model (${repo}): load it first`);
  return opts.base;
}

/** A checked export, ready to write: `write(out)` writes it into `out`. */
export type PreparedExport = (out: FolderSink) => Promise<void>;

/**
 * Checks what an export of `reader`'s run needs (the run's own base model, a checkpoint, an adapter for
 * PEFT) and reads it, before anything is written: a refused export leaves no files behind. Returns the
 * function that writes it.
 */
export async function prepareRunExport(
  reader: RunReader,
  format: FolderExportFormat,
  opts: RunExportOptions,
): Promise<PreparedExport> {
  const meta = await reader.meta();
  const provenance = { ...provenanceFromRun(meta), tabzeroVersion: opts.tabzeroVersion };
  if (format === 'jsonl') {
    const data = { buffers: await reader.buffers(), samples: await reader.samples() };
    return (out) => exportJsonl(data, provenance, out).then(() => undefined);
  }
  if (opts.base)
    checkSameModel(meta, opts.base.model.identity, 'Export it with the model it was trained on (--model).');
  const last = (await reader.checkpoints()).at(-1);
  if (!last)
    throw new Error(`run ${meta.id} has no checkpoint yet: train until its first checkpoint, then export`);
  const cp = await reader.loadCheckpoint(last.step);
  const runProvenance = { ...provenance, run: { id: meta.id, step: last.step, zeroData: !meta.notZeroData } };
  const { repo } = meta.model;
  if (isFullCheckpoint(cp.engineState)) {
    if (format !== 'hf')
      throw new Error(
        format === 'peft'
          ? 'this run fine-tuned every weight (fineTune = full): it has no adapter to export as PEFT; export it as an HF model (--format hf)'
          : 'ONNX export of a fully fine-tuned run: export it as an HF model first (--format hf), then export that folder to ONNX',
      );
    const base = needBase(opts, 'the fine-tuned model', repo);
    return (out) =>
      writeFullModelFolder(base.source, base.model.config, cp.tensors, out, {
        'tabzero.run': meta.id,
        'tabzero.step': String(last.step),
      }).then(() => undefined);
  }
  // Separate proposer and solver adapters export the solver's.
  const { lora } = checkpointAdapter(cp.tensors, cp.engineState);
  if (format === 'peft') {
    const base = needBase(opts, 'a PEFT adapter', repo);
    return (out) =>
      exportPeftAdapter(
        lora,
        {
          provenance: runProvenance,
          model: base.model.config,
          baseModelNameOrPath: opts.baseModelNameOrPath,
        },
        out,
      ).then(() => undefined);
  }
  if (format === 'hf') {
    const base = needBase(opts, 'the merged model', repo);
    return (out) =>
      exportMergedModel(
        base.source,
        lora,
        { dtype: opts.dtype ?? 'base', provenance: runProvenance, onTensor: opts.onProgress },
        out,
      ).then(() => undefined);
  }
  const base = needBase(opts, 'ONNX', repo);
  return async (out) => {
    const onnxDir: FolderSink = {
      writeFile: (name, data) => out.writeFile(`onnx/${name}`, data),
      createFile: (name) => out.createFile(`onnx/${name}`),
    };
    // Lazily: the ONNX protobuf schema is only needed for this export.
    const { exportOnnx } = await import('../onnx/export.ts');
    await exportOnnx(
      base.source,
      base.model,
      { root: out, onnx: onnxDir },
      {
        lora,
        metadata: {
          'tabzero.run': meta.id,
          'tabzero.step': String(last.step),
          'tabzero.seed': String(meta.seed),
        },
        onProgress: opts.onProgress,
      },
    );
  };
}

/** Writes one export of `reader`'s run into `out` (nothing when the export is refused). */
export async function exportRunFolder(
  reader: RunReader,
  format: FolderExportFormat,
  out: FolderSink,
  opts: RunExportOptions,
): Promise<void> {
  await (
    await prepareRunExport(reader, format, opts)
  )(out);
}
