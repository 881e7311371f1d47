// Fuzz: random and adversarial strings never throw, never hang, never execute anything, and always
// produce a typed verdict.
import { describe, expect, it } from 'vitest';
import { evaluateProgram, parseProgram, type ArithLimits } from '../../../src/arith/index.ts';
import { Rng } from '../../../src/random.ts';

const KINDS = ['syntax', 'unsafe', 'limit', 'arity', 'div0', 'overflow'];

function verdict(src: string, limits?: ArithLimits): string {
  const p = parseProgram(src, limits);
  if (!p.ok) {
    expect(KINDS).toContain(p.kind);
    return p.kind;
  }
  const v = evaluateProgram(
    p.value,
    p.value.params.map(() => 3n),
    limits,
  );
  return v.ok ? 'ok' : v.kind;
}

describe('parser fuzz', () => {
  it('random strings over the whitelist and beyond', () => {
    const rng = new Rng(2024);
    const alphabet = '0123456789xyzf+-*/%(),=> \t\nabc{};.$"\'`\u2212\u00d7';
    const seen = new Set<string>();
    for (let k = 0; k < 20000; k++) {
      const len = rng.int(0, 40);
      let s = '';
      for (let i = 0; i < len; i++) s += alphabet[rng.int(0, alphabet.length - 1)];
      seen.add(verdict(s));
    }
    expect([...seen].sort()).toEqual(expect.arrayContaining(['syntax', 'unsafe']));
  });

  it('adversarial inputs are rejected fast with the right class', () => {
    const g = globalThis as { pwned?: boolean };
    const cases: [string, string][] = [
      ['constructor.constructor("globalThis.pwned = true")()', 'unsafe'],
      ['x.constructor', 'unsafe'],
      ['__proto__', 'unsafe'],
      ['f(x) = x; process.exit(1)', 'unsafe'],
      ['# Heading\n\n- **bold** `x + 1`', 'unsafe'],
      ['Sure! The function is f(x) = x + 1 and the input is 3.', 'unsafe'],
      ['f(x) = \uff11 + x', 'unsafe'], // fullwidth digit
      ['f(x) = \u0445 + 1', 'unsafe'], // Cyrillic х
      ['f(x) = x \u2212 1', 'unsafe'], // minus sign (the selfplay layer normalises it before parsing)
      ['f(x) = x \u2215 2', 'unsafe'], // division slash
      ['('.repeat(10000) + 'x' + ')'.repeat(10000), 'limit'],
      ['x' + ' + 1'.repeat(2500), 'limit'],
      ['1'.repeat(10240), 'limit'],
      ['-'.repeat(100) + 'x', 'ok'],
      ['f(x) = ' + '-'.repeat(113), 'syntax'],
    ];
    for (const [src, want] of cases) {
      const t0 = performance.now();
      expect({ src: src.slice(0, 40), got: verdict(src) }).toEqual({ src: src.slice(0, 40), got: want });
      expect(performance.now() - t0).toBeLessThan(200);
    }
    expect(g.pwned).toBeUndefined();
  });

  it('a 1 MB string gets an answer in bounded time, also with the length limit lifted', () => {
    const mb = 'x + '.repeat(262144);
    const t0 = performance.now();
    expect(verdict(mb)).toBe('limit');
    const lifted: ArithLimits = {
      maxSourceChars: 2_000_000,
      maxBinaryOps: 10,
      maxParenDepth: 6,
      maxMagnitude: 1_000_000_000n,
      maxArity: 2,
    };
    expect(verdict(mb, lifted)).toBe('limit'); // the operator limit stops it at the 11th '+'
    expect(verdict('('.repeat(10000) + 'x' + ')'.repeat(10000), lifted)).toBe('limit'); // depth guard
    expect(verdict('\u0000'.repeat(1_000_000), lifted)).toBe('unsafe');
    expect(verdict(' '.repeat(1_000_000), lifted)).toBe('syntax');
    expect(performance.now() - t0).toBeLessThan(3000);
  });
});
