// `--model DIR|tiny|workshop` for the CLI: a model folder on disk, the built-in tiny model (the folder
// `tabzero tiny-model --seed 0` writes, generated once into the user's cache), or the shipped workshop
// model (public/models/tabzero-workshop, resolved from the package, not the working directory).
import { existsSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeFolderSink } from '../src/model/node-folder.ts';
import { loadQwen2TokenizerFiles } from '../src/model/node-qwen2-tokenizer.ts';
import { generateTinyModel } from '../src/model/tiny-model.ts';
import { TINY_DTYPE } from '../src/trainer/builtin-tiny.ts';
import { WORKSHOP_MODEL_PATH } from '../src/trainer/workshop-recipe.ts';

export const TINY_MODEL_ARG = 'tiny';
export const WORKSHOP_MODEL_ARG = 'workshop';

/** The shipped workshop model's folder in this package (`npm run build:workshop-model` writes it). */
export function workshopModelDir(): string {
  return fileURLToPath(new URL(`../${WORKSHOP_MODEL_PATH}`, import.meta.url));
}

export function cacheDir(): string {
  return (
    process.env.TABZERO_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'tabzero')
  );
}

/** The folder of the built-in tiny model, generated on first use. */
export async function tinyModelDir(seed = 0): Promise<string> {
  const dir = join(cacheDir(), 'models', `tiny-seed-${seed}`);
  if (!existsSync(join(dir, 'model.safetensors'))) {
    const tmp = `${dir}.tmp-${process.pid}`;
    await generateTinyModel(await nodeFolderSink(tmp), {
      seed,
      tokenizerFiles: await loadQwen2TokenizerFiles(),
      tokenizerKind: 'qwen2',
      dtype: TINY_DTYPE,
    });

    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
  }
  return dir;
}

export async function resolveModelArg(arg: string): Promise<string> {
  if (arg === TINY_MODEL_ARG) return tinyModelDir(0);
  if (arg === WORKSHOP_MODEL_ARG) {
    const dir = workshopModelDir();
    if (!existsSync(join(dir, 'model.safetensors')))
      throw new Error(
        `--model workshop: ${dir} has no model.safetensors; rebuild it with npm run build:workshop-model`,
      );
    return dir;
  }
  if (!existsSync(join(arg, 'config.json'))) {
    throw new Error(
      `--model ${arg}: not a model folder (no config.json); use a Hugging Face model folder, "tiny" or "workshop"`,
    );
  }
  return arg;
}

/** What a run records of its --model: tiny and workshop by name (found again anywhere), a folder absolute. */
export function recordedModelPath(arg: string): string {
  return arg === TINY_MODEL_ARG || arg === WORKSHOP_MODEL_ARG ? arg : resolve(arg);
}
