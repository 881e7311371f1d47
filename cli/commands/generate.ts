// `tabzero generate`: completions of a prompt from a model folder, on the WebGPU engine (Dawn) or the
// CPU reference. Prints the texts, or with --json ids, log-probs, stop reasons and timing.
import type { Command } from 'commander';
import { cpuGenerate } from '../../src/engine/cpu-generate.ts';
import type { SampleOptions } from '../../src/policy.ts';
import {
  closeFolders,
  loadEngine,
  loadFolder,
  parseBackend,
  parseIntArg,
  parseNumberArg,
  parseWeightDType,
  referenceWeights,
} from '../engine-load.ts';

interface GenerateArgs {
  model: string;
  prompt: string;
  chat?: boolean;
  n?: string;
  maxNew?: string;
  greedy?: boolean;
  temperature?: string;
  topP?: string;
  topK?: string;
  seed?: string;
  backend?: string;
  dtype?: string;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('generate')
    .description('generate completions of a prompt (WebGPU engine, or the CPU reference for tiny models)')
    .requiredOption('--model <dir>', 'model folder (config.json, model.safetensors, tokenizer files)')
    .requiredOption('--prompt <text>', 'prompt text')
    .option('--chat', 'wrap the prompt as one user message with the chat template')
    .option('--n <k>', 'completions per prompt', '1')
    .option('--max-new <n>', 'new tokens at most', '64')
    .option('--greedy', 'greedy decoding (the default unless --temperature is given)')
    .option('--temperature <t>', 'sampling temperature (0 = greedy)')
    .option('--top-p <p>', 'nucleus sampling threshold (1 = off)')
    .option('--top-k <k>', 'top-k sampling (0 = off)')
    .option('--seed <s>', 'sampling seed', '0')
    .option('--backend <name>', 'webgpu (default) or cpu (reference, tiny models)')
    .option('--dtype <dtype>', 'weight precision on the GPU: f32, f16 or bf16 (default: the file)')
    .option('--json', 'print JSON: ids, log-probs, stop reasons, timing')
    .action(async (args: GenerateArgs) => {
      const backend = parseBackend(args.backend);
      const dtype = parseWeightDType(args.dtype);
      if (args.greedy && args.temperature !== undefined)
        throw new Error('--greedy and --temperature exclude each other');
      const temperature = args.greedy ? 0 : parseNumberArg('--temperature', args.temperature, 0);
      const topP = parseNumberArg('--top-p', args.topP, 1);
      if (topP <= 0 || topP > 1) throw new Error(`--top-p must be in (0, 1], not "${args.topP}"`);
      const opts: SampleOptions = {
        n: parseIntArg('--n', args.n, 1, 1),
        maxNew: parseIntArg('--max-new', args.maxNew, 64, 1),
        temperature,
        topK: parseIntArg('--top-k', args.topK, 0),
        topP,
        seed: parseIntArg('--seed', args.seed, 0),
      };
      const model = await loadFolder(args.model);
      const tok = model.tokenizer;
      const text = args.chat
        ? tok.applyChatTemplate([{ role: 'user', content: args.prompt }], { addGenerationPrompt: true })
        : args.prompt;
      const prompt = tok.encode(text);
      if (prompt.length === 0) throw new Error('the prompt encodes to no tokens');
      const t0 = performance.now();
      let completions;
      let stats: unknown = null;
      if (backend === 'cpu') {
        completions = cpuGenerate(model.config, await referenceWeights(model), tok, [prompt], opts);
      } else {
        const engine = await loadEngine(model, {
          maxBatch: opts.n ?? 1,
          maxSeqLen: prompt.length + opts.maxNew,
          dtype,
        });
        const t1 = performance.now();
        completions = await engine.generate([prompt], opts);
        stats = {
          engine: engine.info,
          ...engine.stats,
          generateMs: performance.now() - t1,
          memory: engine.memory(),
        };
      }
      await closeFolders();
      const ms = performance.now() - t0;
      if (args.json) {
        process.stdout.write(
          JSON.stringify(
            {
              backend,
              promptIds: prompt,
              completions: completions.map((c) => ({
                ids: c.ids,
                text: c.text,
                logprobs: Array.from(c.logprobs),
                sampledLogprobs: Array.from(c.sampledLogprobs),
                stopReason: c.stopReason,
              })),
              timing: { totalMs: ms },
              stats,
            },
            null,
            2,
          ) + '\n',
        );
      } else {
        completions.forEach((c, i) => {
          if (completions.length > 1) process.stdout.write(`--- ${i + 1} (${c.stopReason})\n`);
          process.stdout.write(c.text + '\n');
        });
      }
    });
}
