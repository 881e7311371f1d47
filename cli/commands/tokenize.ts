// `tabzero tokenize`: prints the ids of a text under a model folder's own tokenizer (and chat template).
import { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ModelTokenizer } from '../../src/model/tokenizer.ts';

async function readJson(dir: string, file: string): Promise<unknown> {
  const text = await readFile(join(dir, file), 'utf8').catch(() => {
    throw new Error(`${dir}: no ${file} (is this a model folder?)`);
  });
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`${join(dir, file)}: not valid JSON`);
  }
}

export function register(program: Command): void {
  program
    .command('tokenize')
    .description("Print the token ids of a text as a JSON array, using the model folder's tokenizer")
    .requiredOption('--model <dir>', 'model folder (tokenizer.json + tokenizer_config.json)')
    .requiredOption('--text <text>', 'text to tokenize')
    .option('--chat', 'render the text as one user message with the chat template and the generation prompt')
    .action(async (args: { model: string; text: string; chat?: boolean }) => {
      const tokenizer = new ModelTokenizer(
        await readJson(args.model, 'tokenizer.json'),
        await readJson(args.model, 'tokenizer_config.json'),
      );
      const text = args.chat
        ? tokenizer.applyChatTemplate([{ role: 'user', content: args.text }], { addGenerationPrompt: true })
        : args.text;
      process.stdout.write(JSON.stringify(tokenizer.encode(text)) + '\n');
    });
}
