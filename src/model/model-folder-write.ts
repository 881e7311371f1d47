// Writes a Hugging Face model folder that Python `transformers` loads: config.json,
// generation_config.json, tokenizer.json, tokenizer_config.json and model.safetensors, the weights
// streamed tensor by tensor. Used by the tiny-model generator; exporters can use it too. Browser-safe.

import type { FolderSink } from './model-source.ts';
import { WEIGHTS_FILE } from './model-folder.ts';
import { writeSafetensors, type SafetensorsPlan, type TensorSpec } from './safetensors-write.ts';
import type { TokenizerFiles } from './tokenizer-files.ts';

export interface ModelFolderContents {
  config: Record<string, unknown>;
  generationConfig: Record<string, unknown> | null;
  tokenizerFiles: TokenizerFiles;
  /** Tensors in file order. */
  tensors: readonly TensorSpec[];
  /** Each tensor's bytes, in any chunking (total checked against the spec). */
  produce: (spec: TensorSpec) => AsyncIterable<Uint8Array> | Iterable<Uint8Array>;
  /** Extra `__metadata__` entries (strings), e.g. provenance. */
  metadata?: Record<string, string>;
}

function prettyJson(v: unknown): string {
  return JSON.stringify(v, null, 2) + '\n';
}

export async function writeModelFolder(
  out: FolderSink,
  contents: ModelFolderContents,
): Promise<SafetensorsPlan> {
  await out.writeFile('config.json', prettyJson(contents.config));
  if (contents.generationConfig)
    await out.writeFile('generation_config.json', prettyJson(contents.generationConfig));
  // tokenizer.json stays compact: pretty-printing Qwen2's 151k-entry vocabulary adds 2 MB of spaces.
  await out.writeFile('tokenizer.json', JSON.stringify(contents.tokenizerFiles.tokenizer));
  await out.writeFile('tokenizer_config.json', prettyJson(contents.tokenizerFiles.tokenizerConfig));
  const sink = await out.createFile(WEIGHTS_FILE);
  return writeSafetensors(sink, contents.tensors, contents.produce, contents.metadata);
}
