// Recursive-descent parser of AZ-Arith (spec 4.1). Recursion depth is bounded by the parenthesis-depth
// limit (unary signs are read in a loop), and every failure becomes a typed ArithError.
import type { BinaryOp, Expr, Program } from './ast.ts';
import { arithError, okResult, type ArithError, type ArithResult } from './errors.ts';
import { firstUnsafeChar, lex, type Token } from './lexer.ts';
import { DEFAULT_ARITH_LIMITS, variableNames, type ArithLimits } from './limits.ts';

/** Internal control flow only: caught in parseProgram, never escapes. */
class ParseFailure {
  constructor(readonly error: ArithError) {}
}

class Parser {
  private i = 0;
  private depth = 0;
  private binaryOps = 0;
  /** Identifiers the body may use. */
  declared: Set<string>;

  constructor(
    private readonly tokens: Token[],
    private readonly limits: ArithLimits,
    declared: Iterable<string>,
  ) {
    this.declared = new Set(declared);
  }

  peek(offset = 0): Token {
    return this.tokens[Math.min(this.i + offset, this.tokens.length - 1)];
  }

  fail(tok: Token, message: string): never {
    if (tok.type === 'error') throw new ParseFailure(tok.error);
    throw new ParseFailure(arithError('syntax', message));
  }

  isOp(tok: Token, text: string): boolean {
    return tok.type === 'op' && tok.text === text;
  }

  expectOp(text: string): void {
    const tok = this.peek();
    if (!this.isOp(tok, text)) this.fail(tok, `expected '${text}' at ${tok.pos}`);
    this.i++;
  }

  expectEof(): void {
    const tok = this.peek();
    if (tok.type !== 'eof') this.fail(tok, `unexpected text at ${tok.pos}`);
  }

  /** varlist := VAR (',' VAR)* — distinct names from the allowed variables. */
  varlist(allowed: string[]): string[] {
    const names: string[] = [];
    for (;;) {
      const tok = this.peek();
      if (tok.type !== 'ident') this.fail(tok, `expected a variable at ${tok.pos}`);
      if (!allowed.includes(tok.text)) {
        throw new ParseFailure(
          arithError('unsafe', `'${tok.text}' is not an allowed variable (${allowed.join(', ')})`),
        );
      }
      if (names.includes(tok.text)) this.fail(tok, `variable '${tok.text}' declared twice`);
      names.push(tok.text);
      this.i++;
      if (!this.isOp(this.peek(), ',')) return names;
      this.i++;
    }
  }

  countBinary(): void {
    if (++this.binaryOps > this.limits.maxBinaryOps) {
      throw new ParseFailure(arithError('limit', `more than ${this.limits.maxBinaryOps} binary operators`));
    }
  }

  expr(): Expr {
    let left = this.term();
    for (;;) {
      const tok = this.peek();
      if (!(this.isOp(tok, '+') || this.isOp(tok, '-'))) return left;
      this.i++;
      this.countBinary();
      left = { type: 'bin', op: (tok as { text: BinaryOp }).text, left, right: this.term() };
    }
  }

  term(): Expr {
    let left = this.factor();
    for (;;) {
      const tok = this.peek();
      if (!(this.isOp(tok, '*') || this.isOp(tok, '//') || this.isOp(tok, '%'))) return left;
      this.i++;
      this.countBinary();
      left = { type: 'bin', op: (tok as { text: BinaryOp }).text, left, right: this.factor() };
    }
  }

  /** factor := ('-' | '+') factor | primary, read iteratively so long sign runs cannot blow the stack. */
  factor(): Expr {
    let negations = 0;
    for (;;) {
      const tok = this.peek();
      if (this.isOp(tok, '-')) negations++;
      else if (!this.isOp(tok, '+')) break;
      this.i++;
    }
    let e = this.primary();
    for (let k = 0; k < negations; k++) e = { type: 'neg', operand: e };
    return e;
  }

  primary(): Expr {
    const tok = this.peek();
    if (tok.type === 'int') {
      this.i++;
      return { type: 'int', value: BigInt(tok.text) };
    }
    if (tok.type === 'ident') {
      if (!this.declared.has(tok.text)) {
        throw new ParseFailure(
          arithError('unsafe', `'${tok.text}' at ${tok.pos} is not a declared variable`),
        );
      }
      this.i++;
      return { type: 'var', name: tok.text };
    }
    if (this.isOp(tok, '(')) {
      if (++this.depth > this.limits.maxParenDepth) {
        throw new ParseFailure(
          arithError('limit', `parentheses nested deeper than ${this.limits.maxParenDepth}`),
        );
      }
      this.i++;
      const inner = this.expr();
      this.expectOp(')');
      this.depth--;
      return inner;
    }
    return this.fail(
      tok,
      tok.type === 'eof' ? 'unexpected end of program' : `unexpected token at ${tok.pos}`,
    );
  }

  /** Is the token stream `( VAR (, VAR)* ) =>` from the current position? */
  looksLikeArrowList(): boolean {
    let k = 1;
    for (;;) {
      if (this.peek(k).type !== 'ident') return false;
      k++;
      const sep = this.peek(k);
      if (this.isOp(sep, ',')) {
        k++;
        continue;
      }
      return this.isOp(sep, ')') && this.isOp(this.peek(k + 1), '=>');
    }
  }

  program(): Program {
    const allowed = variableNames(this.limits.maxArity);
    const t0 = this.peek();
    const t1 = this.peek(1);
    let params: string[];
    let form: Program['form'];
    if (t0.type === 'ident' && t0.text === 'f' && this.isOp(t1, '(')) {
      this.i += 2;
      params = this.varlist(allowed);
      this.expectOp(')');
      this.expectOp('=');
      form = 'header';
    } else if (this.isOp(t0, '(') && this.looksLikeArrowList()) {
      this.i++;
      params = this.varlist(allowed);
      this.expectOp(')');
      this.expectOp('=>');
      form = 'arrow';
    } else if (t0.type === 'ident' && this.isOp(t1, '=>')) {
      params = this.varlist(allowed);
      this.expectOp('=>');
      form = 'arrow';
    } else {
      // Bare expression: it declares the variables it uses, in alphabetical order.
      this.declared = new Set(allowed);
      const body = this.expr();
      this.expectEof();
      const used = new Set<string>();
      collectVars(body, used);
      return { params: allowed.filter((v) => used.has(v)), body, form: 'bare' };
    }
    this.declared = new Set(params);
    const body = this.expr();
    this.expectEof();
    return { params, body, form };
  }
}

function collectVars(e: Expr, into: Set<string>): void {
  if (e.type === 'var') into.add(e.name);
  else if (e.type === 'neg') collectVars(e.operand, into);
  else if (e.type === 'bin') {
    collectVars(e.left, into);
    collectVars(e.right, into);
  }
}

/** Parse any program form (header, arrow, bare expression). Never throws, never executes anything. */
export function parseProgram(src: string, limits: ArithLimits = DEFAULT_ARITH_LIMITS): ArithResult<Program> {
  if (typeof src !== 'string') return arithError('syntax', 'program is not a string');
  if (src.length > limits.maxSourceChars) {
    return arithError('limit', `program has ${src.length} characters (limit ${limits.maxSourceChars})`);
  }
  const bad = firstUnsafeChar(src);
  if (bad >= 0) {
    return arithError('unsafe', `character ${JSON.stringify(src[bad])} at ${bad} is not allowed`);
  }
  const parser = new Parser(lex(src), limits, []);
  try {
    return okResult(parser.program());
  } catch (e) {
    if (e instanceof ParseFailure) return e.error;
    // Only a bug in this file could land here; report it as a typed error rather than crash the caller.
    return arithError('syntax', `internal parser error: ${e instanceof Error ? e.message : String(e)}`);
  }
}
