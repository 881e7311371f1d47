// loadModelFolder refuses a folder whose tokenizer (or generation config) holds token ids the weights
// have no embedding row for, at load, naming the id and vocab_size — not an out-of-range read later.
import { describe, expect, it } from 'vitest';
import { loadModelFolder } from '../../../src/model/model-folder.ts';
import { memoryFolder, type MemoryFolder } from '../../../src/model/model-source.ts';
import { generateTinyModel } from '../../../src/model/tiny-model.ts';
import { byteTokenizerFiles } from '../../../src/model/tokenizer-files.ts';

async function tinyFolder(): Promise<MemoryFolder> {
  const folder = memoryFolder('tiny');
  await generateTinyModel(folder, {
    seed: 2,
    dtype: 'F32',
    tokenizerFiles: byteTokenizerFiles(),
    tokenizerKind: 'bytes',
    hidden: 32,
    layers: 1,
    intermediate: 64,
  });
  return folder;
}

function editJson(folder: MemoryFolder, file: string, edit: (j: Record<string, unknown>) => object): void {
  const json = JSON.parse(new TextDecoder().decode(folder.files.get(file)!));
  folder.files.set(file, new TextEncoder().encode(JSON.stringify(edit(json))));
}

describe('loadModelFolder: token ids against vocab_size', () => {
  it('loads the byte model (259 ids, 272 embedding rows)', async () => {
    const model = await loadModelFolder(await tinyFolder());
    expect([model.tokenizer.vocabSize, model.config.vocabSize]).toEqual([259, 272]);
    expect(model.tokenizer.lastToken).toBe('<|im_end|>');
  });

  it('refuses a tokenizer with an id ≥ vocab_size, naming the id, its token and vocab_size', async () => {
    const folder = await tinyFolder();
    editJson(folder, 'config.json', (c) => ({ ...c, vocab_size: 256 }));
    await expect(loadModelFolder(folder)).rejects.toThrow(
      'in-memory folder (tiny): tokenizer.json has token id 258 ("<|im_end|>"), but config.json\'s vocab_size is 256 ' +
        '(ids 0 to 255): the tokenizer and the weights come from different models; use the tokenizer files that came with these weights.',
    );
  });

  it('refuses a generation config whose eos_token_id is past vocab_size', async () => {
    const folder = await tinyFolder();
    editJson(folder, 'generation_config.json', (g) => ({ ...g, eos_token_id: [258, 300] }));
    await expect(loadModelFolder(folder)).rejects.toThrow(
      "in-memory folder (tiny): generation_config.json's eos_token_id 300 is not an id below config.json's vocab_size 272: " +
        'it comes from another model; use the generation_config.json that came with these weights.',
    );
  });
});
