// `tabzero logits`: logits of every position of given token rows, written as a safetensors file
// (tensor `logits`, f32, [rows, length, vocab]) for checking the engine against outside references.
import type { Command } from 'commander';
import { qwen2Logits } from '../../src/engine/reference/qwen2.ts';
import { nodeFileSink } from '../../src/model/node-folder.ts';
import { writeSafetensors } from '../../src/model/safetensors-write.ts';
import {
  closeFolders,
  loadEngine,
  loadFolder,
  parseBackend,
  parseWeightDType,
  referenceWeights,
} from '../engine-load.ts';

export function parseTokenRows(s: string): number[][] {
  const rows = s.split(';').map((r, i) =>
    r.split(',').map((t) => {
      const n = Number(t.trim());
      if (t.trim() === '' || !Number.isSafeInteger(n) || n < 0)
        throw new Error(`--tokens row ${i + 1}: "${t}" is not a token id`);
      return n;
    }),
  );
  if (rows.some((r) => r.length !== rows[0].length)) throw new Error('--tokens rows must have equal lengths');
  return rows;
}

export function register(program: Command): void {
  program
    .command('logits')
    .description(
      'write the logits of token rows to a safetensors file (tensor "logits", f32 [rows, length, vocab])',
    )
    .requiredOption('--model <dir>', 'model folder')
    .requiredOption('--tokens <rows>', 'token ids: "1,2,3;4,5,6" (rows of equal length)')
    .requiredOption('--out <file>', 'output .safetensors file')
    .option('--backend <name>', 'webgpu (default) or cpu (reference)')
    .option('--dtype <dtype>', 'weight precision on the GPU: f32, f16 or bf16 (default: the file)')
    .action(
      async (args: { model: string; tokens: string; out: string; backend?: string; dtype?: string }) => {
        const backend = parseBackend(args.backend);
        const dtype = parseWeightDType(args.dtype);
        const rows = parseTokenRows(args.tokens);
        const model = await loadFolder(args.model);
        const V = model.config.vocabSize;
        for (const r of rows)
          for (const id of r) if (id >= V) throw new Error(`token id ${id} is outside the vocabulary (${V})`);
        let logits: Float32Array;
        if (backend === 'cpu') {
          const out = qwen2Logits(
            model.config,
            await referenceWeights(model),
            rows.map((ids) => ({ ids })),
          );
          logits = Float32Array.from(out.logits);
        } else {
          const engine = await loadEngine(model, { maxBatch: rows.length, maxSeqLen: rows[0].length, dtype });
          logits = await engine.allLogits(rows);
        }
        await closeFolders();
        const bytes = new Uint8Array(logits.buffer, logits.byteOffset, logits.byteLength);
        await writeSafetensors(
          nodeFileSink(args.out),
          [{ name: 'logits', dtype: 'F32', shape: [rows.length, rows[0].length, V] }],
          function* () {
            yield bytes;
          },
          { backend, model: args.model },
        );
        process.stderr.write(`wrote logits [${rows.length}, ${rows[0].length}, ${V}] to ${args.out}\n`);
      },
    );
}
