// `tabzero export`: a run's merged HF model, PEFT adapter, JSONL, ONNX (transformers.js) or run archive.
import type { Command } from 'commander';
import { writeFile } from 'node:fs/promises';
import { encodeSeedSet } from '../../src/store/seed-set.ts';
import { nodeExportTarget } from '../../src/export/node-export-sink.ts';
import { writeRunArchiveFile } from '../../src/store/node-archive.ts';
import { NodeRunStore } from '../../src/store/node-run-store.ts';
import { TABZERO_VERSION } from '../../src/version.ts';
import { exportRunFolder, type FolderExportFormat } from '../../src/trainer/run-export.ts';
import { resolveModelArg } from '../model-arg.ts';
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
    .option('--model <dir|tiny|workshop>', "the run's base model folder (needed for hf, peft and onnx)")
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
      if (needsModel && !a.model)
        throw new Error(`--format ${a.format} needs --model (the run's base model folder)`);
      try {
        const modelDir = a.model ? await resolveModelArg(a.model) : null;
        const base = modelDir
          ? { source: nodeFolderSource(modelDir), model: await loadFolder(modelDir) }
          : undefined;
        const target = await nodeExportTarget(a.out);
        await exportRunFolder(reader, a.format as FolderExportFormat, target.sink, {
          base,
          dtype: a.dtype,
          baseModelNameOrPath: modelDir ?? undefined,
          tabzeroVersion: TABZERO_VERSION,
          onProgress: (done, total) => {
            if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K  tensors ${done}/${total}`);
          },
        });
        await target.finish();
        if (process.stderr.isTTY) process.stderr.write('\n');
        process.stdout.write(`wrote ${a.out} (${target.kind})\n`);
        await base?.source.close();
      } finally {
        await closeFolders();
      }
    });
}
