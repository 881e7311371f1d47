// Tokenizer of AZ-Arith. Lexing stops at the first bad token and emits an `error` token there, so the
// parser reports errors in left-to-right order (spec 4.1: the first error met is the one reported).
import { arithError, type ArithError } from './errors.ts';
import { MAX_LITERAL_DIGITS } from './limits.ts';

export type Token =
  | { type: 'int'; text: string; pos: number }
  | { type: 'ident'; text: string; pos: number }
  | { type: 'op'; text: '+' | '-' | '*' | '//' | '%' | '(' | ')' | ',' | '=' | '=>'; pos: number }
  | { type: 'error'; error: ArithError; pos: number }
  | { type: 'eof'; pos: number };

/** Every character a program may contain (spec 4.1); anything else is `unsafe`. */
const WHITELIST = /^[0-9xyzf+\-*/%(),=> \t\n]*$/;

export function firstUnsafeChar(src: string): number {
  if (WHITELIST.test(src)) return -1;
  for (let i = 0; i < src.length; i++) if (!WHITELIST.test(src[i])) return i;
  return -1;
}

const isDigit = (c: string) => c >= '0' && c <= '9';
const isLetter = (c: string) => c >= 'a' && c <= 'z';

export function lex(src: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    if (c === ' ' || c === '\t' || c === '\n') {
      i++;
      continue;
    }
    const pos = i;
    if (isDigit(c)) {
      while (i < src.length && isDigit(src[i])) i++;
      const text = src.slice(pos, i);
      if (text.length > MAX_LITERAL_DIGITS) {
        tokens.push({
          type: 'error',
          pos,
          error: arithError('limit', `literal ${text} has more than ${MAX_LITERAL_DIGITS} digits`),
        });
        return tokens;
      }
      tokens.push({ type: 'int', text, pos });
      continue;
    }
    if (isLetter(c)) {
      // A run of letters is one identifier, so `xy` is not silently read as x·y.
      while (i < src.length && isLetter(src[i])) i++;
      tokens.push({ type: 'ident', text: src.slice(pos, i), pos });
      continue;
    }
    if (c === '/') {
      if (src[i + 1] === '/') {
        tokens.push({ type: 'op', text: '//', pos });
        i += 2;
        continue;
      }
      tokens.push({
        type: 'error',
        pos,
        error: arithError('syntax', `'/' at ${pos}: only '//' (floor division) exists`),
      });
      return tokens;
    }
    if (c === '=') {
      if (src[i + 1] === '>') {
        tokens.push({ type: 'op', text: '=>', pos });
        i += 2;
      } else {
        tokens.push({ type: 'op', text: '=', pos });
        i++;
      }
      continue;
    }
    if (c === '+' || c === '-' || c === '*' || c === '%' || c === '(' || c === ')' || c === ',') {
      tokens.push({ type: 'op', text: c, pos });
      i++;
      continue;
    }
    tokens.push({ type: 'error', pos, error: arithError('syntax', `unexpected '${c}' at ${pos}`) });
    return tokens;
  }
  tokens.push({ type: 'eof', pos: src.length });
  return tokens;
}
