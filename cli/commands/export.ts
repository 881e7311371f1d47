// `tabzero export`: a run's merged HF model, PEFT adapter, JSONL, ONNX (transformers.js) or run archive.
import type { Command } from 'commander';
import { writeFile } from 'node:fs/promises';
import { encodeSeedSet } from '../../src/store/seed-set.ts';
import { nodeExportTarget } from '../../src/export/node-export-sink.ts';
import { writeRunArchiveFile } from '../../src/store/node-archive.ts';
import { NodeRunStore } from '../../src/store/node-run-store.ts';
import { TABZERO_VERSION } from '../../src/version.ts';
import { prepareRunExport, type FolderExportFormat } from '../../src/trainer/run-export.ts';
import { resolveModelArg } from '../model-arg.ts';
import type { RunMeta } from '../../src/store/types.ts';
import { describeModel } from '../../src/store/identity.ts';
import { closeFolders, loadFolder } from '../engine-load.ts';
import { nodeFolderSource } from '../../src/model/node-folder.ts';

const FORMATS = ['hf', 'peft', 'jsonl', 'onnx', 'archive', 'seed-set'] as const;
type Format = (typeof FORMATS)[number];

interface ExportArgs {
  run: string;
  format: string;
  out: string;
  model?: string;
  dtype?: string;
}

export function register(program: Command): void {
  program
    .command('export')
    .description(
      'export a run: merged HF model, PEFT adapter, JSONL, ONNX for transformers.js, or a run archive',
    )
    .requiredOption('--run <dir>', 'run folder (from tabzero train)')
    .requiredOption('--format <name>', FORMATS.join(' | '))
    .requiredOption(
      '--out <path>',
      'output folder, or a .zip file (archive: a .tabzero.tar file; seed-set: a .jsonl file)',
    )
    .option(
      '--model <dir|tiny|workshop>',
      "the run's base model folder (hf, peft, onnx; default: where the run recorded it, if its weights are still there)",
    )
    .option('--dtype <dtype>', 'hf: merged weights in the base dtype (base) or f32', 'base')
    .action(async (a: ExportArgs) => {
      if (!FORMATS.includes(a.format as Format))
        throw new Error(`--format must be one of ${FORMATS.join(', ')}`);
      if (a.dtype !== 'base' && a.dtype !== 'f32') throw new Error('--dtype must be base or f32');
      const reader = await new NodeRunStore(process.cwd()).readRun(a.run);
      if (a.format === 'archive') {
        await writeRunArchiveFile(a.out, await reader.exportData(), `tabzero ${TABZERO_VERSION}`);
        process.stdout.write(`wrote ${a.out}\n`);
        return;
      }
      if (a.format === 'seed-set') {
        const set = await reader.seedSet();
        if (!set) throw new Error(`${a.run} has no seed set yet: it is written when seeding finishes`);
        await writeFile(a.out, encodeSeedSet(set));
        process.stdout.write(`wrote ${a.out} (${set.entries.length} tasks)\n`);
        return;
      }
      const needsModel = a.format !== 'jsonl';
      try {
        const modelDir = a.model
          ? await resolveModelArg(a.model)
          : needsModel
            ? await recordedModelDir(await reader.meta(), a.format)
            : null;
        const base = modelDir
          ? { source: nodeFolderSource(modelDir), model: await loadFolder(modelDir) }
          : undefined;
        const meta = await reader.meta();
        if (base && !a.model && base.model.identity.sha256 !== meta.model.sha256)
          throw new Error(
            `--format ${a.format} needs the run's base model (${describeModel(meta.model)}); ` +
              `${meta.modelPath} now holds other weights (sha256 ${base.model.identity.sha256.slice(0, 12)}…): give it with --model`,
          );
        // Checked (the run's own base model, a checkpoint) before --out is created.
        const write = await prepareRunExport(reader, a.format as FolderExportFormat, {
          base,
          dtype: a.dtype,
          baseModelNameOrPath: modelDir ?? undefined,
          tabzeroVersion: TABZERO_VERSION,
          onProgress: (done, total) => {
            if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K  tensors ${done}/${total}`);
          },
        });
        const target = await nodeExportTarget(a.out);
        await write(target.sink);
        await target.finish();
        if (process.stderr.isTTY) process.stderr.write('\n');
        process.stdout.write(`wrote ${a.out} (${target.kind})\n`);
        await base?.source.close();
      } finally {
        await closeFolders();
      }
    });
}

/**
 * The base model folder the run recorded (`tabzero train --model`), when it is still there (the caller
 * checks its weights are the run's); otherwise an error that asks for --model.
 */
async function recordedModelDir(meta: RunMeta, format: string): Promise<string> {
  const ask = `--format ${format} needs the run's base model (${describeModel(meta.model)})`;
  if (!meta.modelPath) throw new Error(`${ask}: give it with --model`);
  const dir = await resolveModelArg(meta.modelPath).catch(() => null);
  if (!dir) throw new Error(`${ask}, recorded at ${meta.modelPath}, which is gone: give it with --model`);
  return dir;
}
