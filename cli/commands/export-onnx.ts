// `tabzero export-onnx`: a model folder (optionally with a PEFT adapter merged in) as a transformers.js
// ONNX folder (onnx/model.onnx, onnx/model_fp16.onnx, external data, config + tokenizer files).
import { Command, Option } from 'commander';
import { resolveModelArg } from '../model-arg.ts';
import { exportOnnxFolder } from '../../src/onnx/node.ts';
import type { OnnxVariant } from '../../src/onnx/qwen2-graph.ts';

interface ExportOnnxArgs {
  model: string;
  out: string;
  variants: 'fp32' | 'fp16' | 'both';
  adapter?: string;
}

const MIB = 1024 * 1024;

export function register(program: Command): void {
  program
    .command('export-onnx')
    .description(
      'Export a Qwen2 model folder (base, or with a PEFT adapter merged) as ONNX that transformers.js loads',
    )
    .requiredOption('--model <dir>', 'model folder (config.json, model.safetensors, tokenizer), or "tiny"')
    .requiredOption('--out <dir>', 'output folder (created if missing)')
    .addOption(
      new Option('--variants <which>', 'precision variants to write')
        .choices(['fp32', 'fp16', 'both'])
        .default('both'),
    )
    .option('--adapter <dir>', 'PEFT LoRA adapter folder to merge into the weights before export')
    .action(async (args: ExportOnnxArgs) => {
      const variants: OnnxVariant[] = args.variants === 'both' ? ['fp32', 'fp16'] : [args.variants];
      const modelDir = await resolveModelArg(args.model);
      const result = await exportOnnxFolder(modelDir, args.out, {
        variants,
        adapterDir: args.adapter,
        onProgress: (done, total) => {
          if (process.stderr.isTTY) process.stderr.write(`\rweights ${done}/${total}`);
        },
      });
      if (process.stderr.isTTY) process.stderr.write('\n');
      for (const v of result.variants) {
        process.stdout.write(
          `${v.variant}: ${v.modelFile} (${(v.modelBytes / 1024).toFixed(1)} KiB) + ${v.dataFile} (${(v.dataBytes / MIB).toFixed(1)} MiB)\n`,
        );
      }
      process.stdout.write(
        `wrote ${result.files.length} files to ${args.out} in ${(result.elapsedMs / 1000).toFixed(1)} s\n`,
      );
    });
}
