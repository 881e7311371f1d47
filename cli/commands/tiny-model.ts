// `tabzero tiny-model`: writes a complete random Qwen2 model folder (HF layout), deterministic per seed.
import { Command, InvalidArgumentError, Option } from 'commander';
import { parseFloatDType } from '../../src/model/dtype.ts';
import { nodeFolderSink } from '../../src/model/node-folder.ts';
import { loadQwen2TokenizerFiles } from '../../src/model/node-qwen2-tokenizer.ts';
import { parameterCount } from '../../src/model/qwen2-config.ts';
import { generateTinyModel, TINY_DEFAULTS, type TinyTokenizerKind } from '../../src/model/tiny-model.ts';
import { byteTokenizerFiles } from '../../src/model/tokenizer-files.ts';

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n <= 0)
    throw new InvalidArgumentError('expected a positive integer');
  return n;
}

export function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n))
    throw new InvalidArgumentError('expected a non-negative integer');
  return n;
}

interface TinyModelArgs {
  out: string;
  seed: number;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  intermediate: number;
  dtype: string;
  shape?: 'qwen2-0.5b';
  tokenizer: TinyTokenizerKind;
}

export function register(program: Command): void {
  program
    .command('tiny-model')
    .description(
      'Write a random Qwen2 model folder (config, safetensors, tokenizer, generation config), deterministic per seed',
    )
    .requiredOption('--out <dir>', 'output folder (created if missing)')
    .requiredOption('--seed <n>', 'random seed', nonNegativeInt)
    .option('--hidden <n>', 'hidden size', positiveInt, TINY_DEFAULTS.hidden)
    .option('--layers <n>', 'number of layers', positiveInt, TINY_DEFAULTS.layers)
    .option('--heads <n>', 'attention heads', positiveInt, TINY_DEFAULTS.heads)
    .option('--kv-heads <n>', 'key/value heads', positiveInt, TINY_DEFAULTS.kvHeads)
    .option('--intermediate <n>', 'MLP intermediate size', positiveInt, TINY_DEFAULTS.intermediate)
    .addOption(new Option('--dtype <dtype>', 'weight dtype').choices(['bf16', 'f16', 'f32']).default('bf16'))
    .addOption(
      new Option(
        '--shape <name>',
        'write the real shape (random weights) instead of the sizes above',
      ).choices(['qwen2-0.5b']),
    )
    .addOption(
      new Option('--tokenizer <kind>', 'qwen2 (real vocabulary) or bytes (256 byte tokens + ChatML specials)')
        .choices(['qwen2', 'bytes'])
        .default('qwen2'),
    )
    .action(async (args: TinyModelArgs) => {
      const started = performance.now();
      const tokenizerFiles =
        args.tokenizer === 'bytes' ? byteTokenizerFiles() : await loadQwen2TokenizerFiles();
      const result = await generateTinyModel(await nodeFolderSink(args.out), {
        seed: args.seed,
        tokenizerFiles,
        tokenizerKind: args.tokenizer,
        dtype: parseFloatDType(args.dtype),
        shape: args.shape,
        hidden: args.hidden,
        layers: args.layers,
        heads: args.heads,
        kvHeads: args.kvHeads,
        intermediate: args.intermediate,
        onTensor: (done, total) => {
          if (args.shape && process.stderr.isTTY) process.stderr.write(`\rtensors ${done}/${total}`);
        },
      });
      if (args.shape && process.stderr.isTTY) process.stderr.write('\n');
      const c = result.config;
      process.stdout.write(
        `wrote ${args.out}: hidden ${c.hiddenSize}, layers ${c.numHiddenLayers}, heads ${c.numAttentionHeads}/${c.numKeyValueHeads}, ` +
          `intermediate ${c.intermediateSize}, vocab ${c.vocabSize}, ${parameterCount(c).toLocaleString('en-US')} parameters, ` +
          `${result.tensors.length} tensors, ${result.safetensorsBytes.toLocaleString('en-US')} bytes (${args.dtype}) ` +
          `in ${((performance.now() - started) / 1000).toFixed(1)} s\n`,
      );
    });
}
