// The model's tokenizer: @huggingface/tokenizers for encode/decode with the model's own tokenizer.json,
// @huggingface/jinja for its chat template (nothing hand-written). Implements src/policy.ts's Tokenizer.
// Browser-safe.

import { Template } from '@huggingface/jinja';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import type { ChatMessage, Tokenizer } from '../policy.ts';

export class TokenizerError extends Error {
  override name = 'TokenizerError';
}

/** The replacement character a decode yields for an incomplete UTF-8 sequence. */
const REPLACEMENT = '\uFFFD';

export class ModelTokenizer implements Tokenizer {
  readonly eosTokenIds: readonly number[];
  /** Number of ids the tokenizer can produce (vocabulary + added tokens); the config's vocab_size may be larger. */
  readonly vocabSize: number;
  /** The token of the highest id (vocabSize − 1), for messages. */
  readonly lastToken: string | null;
  readonly specialTokens: ReadonlyMap<string, number>;
  readonly chatTemplate: string;
  readonly eosToken: string | null;
  readonly padTokenId: number | null;
  private readonly hf: HfTokenizer;
  private readonly template: Template;
  private readonly bosToken: string | null;

  constructor(tokenizerJson: unknown, tokenizerConfig: unknown, generationEosIds: readonly number[] = []) {
    if (typeof tokenizerJson !== 'object' || tokenizerJson === null)
      throw new TokenizerError('tokenizer.json: not a JSON object');
    if (typeof tokenizerConfig !== 'object' || tokenizerConfig === null) {
      throw new TokenizerError('tokenizer_config.json: not a JSON object');
    }
    const cfg = tokenizerConfig as Record<string, unknown>;
    try {
      this.hf = new HfTokenizer(tokenizerJson, cfg);
    } catch (err) {
      throw new TokenizerError(
        `tokenizer.json: cannot build the tokenizer (${err instanceof Error ? err.message : String(err)})`,
        { cause: err },
      );
    }
    if (typeof cfg.chat_template !== 'string') {
      throw new TokenizerError(
        "tokenizer_config.json: no chat_template string (TabZero needs the model's own template)",
      );
    }
    this.chatTemplate = cfg.chat_template;
    try {
      this.template = new Template(cfg.chat_template);
    } catch (err) {
      throw new TokenizerError(
        `tokenizer_config.json: chat_template does not parse (${err instanceof Error ? err.message : String(err)})`,
        { cause: err },
      );
    }
    const tokenText = (v: unknown): string | null =>
      typeof v === 'string'
        ? v
        : v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string'
          ? (v as { content: string }).content
          : null;
    this.eosToken = tokenText(cfg.eos_token);
    this.bosToken = tokenText(cfg.bos_token);
    const special = new Map<string, number>();
    for (const [id, tok] of this.hf.get_added_tokens_decoder()) if (tok.special) special.set(tok.content, id);
    this.specialTokens = special;
    const eos = new Set<number>(generationEosIds);
    for (const name of [this.eosToken, '<|im_end|>', '<|endoftext|>']) {
      const id = name === null ? undefined : special.get(name);
      if (id !== undefined) eos.add(id);
    }
    if (eos.size === 0)
      throw new TokenizerError('tokenizer_config.json: no eos_token that the tokenizer knows');
    this.eosTokenIds = [...eos].sort((a, b) => a - b);
    const pad = tokenText(cfg.pad_token);
    this.padTokenId = pad === null ? null : (special.get(pad) ?? null);
    let maxId = -1;
    let lastToken: string | null = null;
    for (const [token, id] of this.hf.get_vocab(true)) {
      if (id > maxId) [maxId, lastToken] = [id, token];
    }
    this.vocabSize = maxId + 1;
    this.lastToken = lastToken;
  }

  encode(text: string): number[] {
    return this.hf.encode(text, { add_special_tokens: false }).ids;
  }

  decode(ids: readonly number[], opts: { skipSpecialTokens?: boolean } = {}): string {
    if (ids.length === 0) return ''; // the library rejects an empty list
    return this.hf.decode([...ids], {
      skip_special_tokens: opts.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: false,
    });
  }

  applyChatTemplate(messages: ChatMessage[], opts: { addGenerationPrompt: boolean }): string {
    return this.template.render({
      messages,
      add_generation_prompt: opts.addGenerationPrompt,
      bos_token: this.bosToken ?? '',
      eos_token: this.eosToken ?? '',
    });
  }

  /** Id of a token string (special or not), or undefined. */
  tokenId(token: string): number | undefined {
    return this.hf.token_to_id(token);
  }

  /** Incremental decoder for streaming text: push ids as they are generated, get back the new text. */
  createStreamDecoder(opts: { skipSpecialTokens?: boolean } = {}): StreamDecoder {
    return new StreamDecoder((ids) => this.decode(ids, opts));
  }
}

/**
 * Streams text out of a growing id sequence. Byte-level BPE tokens may split a UTF-8 character, so
 * text is only released once it no longer ends in a replacement character; decoding restarts from a
 * recent offset so each push costs O(tokens since the last complete character), not O(all tokens).
 */
export class StreamDecoder {
  private ids: number[] = [];
  /** ids before `prefixStart` are fully emitted and never decoded again. */
  private prefixStart = 0;
  /** Text of ids[prefixStart .. readStart), already emitted. */
  private readStart = 0;

  constructor(private readonly decodeIds: (ids: number[]) => string) {}

  /** Appends ids; returns the newly completed text ('' when a character is still incomplete). */
  push(...newIds: number[]): string {
    this.ids.push(...newIds);
    const prefixText = this.decodeIds(this.ids.slice(this.prefixStart, this.readStart));
    const fullText = this.decodeIds(this.ids.slice(this.prefixStart));
    if (fullText.length <= prefixText.length || fullText.endsWith(REPLACEMENT)) return '';
    const out = fullText.slice(prefixText.length);
    this.prefixStart = this.readStart;
    this.readStart = this.ids.length;
    return out;
  }

  /** Text still held back (an incomplete character at the end), decoded as is. */
  flush(): string {
    const prefixText = this.decodeIds(this.ids.slice(this.prefixStart, this.readStart));
    const fullText = this.decodeIds(this.ids.slice(this.prefixStart));
    this.prefixStart = this.readStart = this.ids.length;
    return fullText.slice(prefixText.length);
  }
}
