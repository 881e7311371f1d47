// Spec 4.1 and 6.1: evaluator vectors, canonical printer golden vectors, rejection classes.
import { describe, expect, it } from 'vitest';
import {
  closedForm,
  evaluateProgram,
  floorDiv,
  floorMod,
  parseProgram,
  printProgram,
} from '../../../src/arith/index.ts';

function canonical(src: string): string {
  const r = parseProgram(src);
  if (!r.ok) throw new Error(`${src}: ${r.kind} ${r.message}`);
  return printProgram(r.value);
}

function evalClosed(src: string): string {
  const r = parseProgram(src);
  if (!r.ok) return r.kind;
  const v = evaluateProgram(r.value, []);
  return v.ok ? v.value.toString() : v.kind;
}

describe('AZ-Arith evaluator (spec 4.1 vectors)', () => {
  const vectors: [string, bigint][] = [
    ['7//2', 3n],
    ['-7//2', -4n],
    ['7//-2', -4n],
    ['-7//-2', 3n],
    ['7%3', 1n],
    ['-7%3', 2n],
    ['7%-3', -2n],
    ['-7%-3', -1n],
    ['2- -3', 5n],
    ['-3*-3', 9n],
    ['-2//3', -1n],
  ];
  it.each(vectors)('%s = %s', (src, want) => {
    expect(evalClosed(src)).toBe(want.toString());
  });

  it('floorDiv / floorMod follow Python on all sign combinations', () => {
    expect(floorDiv(-1n, 5n)).toBe(-1n);
    expect(floorMod(-1n, 5n)).toBe(4n);
    expect(floorDiv(10n, 5n)).toBe(2n);
    expect(floorDiv(-10n, 5n)).toBe(-2n);
    expect(floorMod(1n, -5n)).toBe(-4n);
  });

  it('x // 0 parses and fails at evaluation with div0; overflow is typed', () => {
    const p = parseProgram('x // 0');
    expect(p.ok).toBe(true);
    if (!p.ok) return;
    const v = evaluateProgram(p.value, [5n]);
    expect(v.ok ? 'ok' : v.kind).toBe('div0');
    expect(evalClosed('x % (2 - 2)')).toBe('arity'); // a bare expression declares the x it uses
    expect(evalClosed('9999 * 9999 * 9999')).toBe('overflow');
    expect(evalClosed('1 % (3 - 3)')).toBe('div0');
  });

  it('reports the first error met, left to right', () => {
    expect(evalClosed('(1 // 0) + 9999 * 9999 * 9999')).toBe('div0');
    expect(evalClosed('9999 * 9999 * 9999 + 1 // 0')).toBe('overflow');
  });

  it('arity mismatch is typed', () => {
    const p = parseProgram('f(x, y) = x + y');
    if (!p.ok) throw new Error('parse');
    const v = evaluateProgram(p.value, [1n]);
    expect(v.ok ? 'ok' : v.kind).toBe('arity');
  });
});

describe('canonical printer (spec 4.1 golden vectors)', () => {
  const golden: [string, string][] = [
    ['x+1', 'f(x) = x + 1'],
    ['(x, y) => x*(y+2)', 'f(x, y) = x * (y + 2)'],
    ['f(x, y) = x + 1', 'f(x, y) = x + 1'],
    ['y - x', 'f(x, y) = y - x'],
    ['(1+2)+3', '1 + 2 + 3'],
    ['1-(2-3)', '1 - (2 - 3)'],
    ['2 - -3', '2 - (-3)'],
    ['-3', '-3'],
    ['--3', '-(-3)'],
    ['-(x+1)*2', 'f(x) = -(x + 1) * 2'],
    ['+x', 'f(x) = x'],
  ];
  it.each(golden)('%s → %s', (src, want) => {
    expect(canonical(src)).toBe(want);
  });

  it('substitutes (x * 3 + y) % 7 with x = 4, y = -9', () => {
    const p = parseProgram('(x * 3 + y) % 7');
    if (!p.ok) throw new Error('parse');
    expect(closedForm(p.value, [4n, -9n])).toBe('(4 * 3 + (-9)) % 7');
  });

  it('arrow, header and bare forms give the same canonical string', () => {
    const forms = ['f(x, y) = (x*3+y)%7', '(x, y) => (x * 3 + y) % 7', '(x*3 + y) % 7'];
    expect(new Set(forms.map(canonical)).size).toBe(1);
    expect(canonical('x => x * 2')).toBe(canonical('f(x) = x*2'));
  });
});

describe('rejections (spec 6.1)', () => {
  const kind = (src: string) => {
    const r = parseProgram(src);
    return r.ok ? 'ok' : r.kind;
  };
  it('rejects x / 2 and x ** 2 as syntax, Math.floor(x) and f(x) = y as unsafe', () => {
    expect(kind('x / 2')).toBe('syntax');
    expect(kind('x ** 2')).toBe('syntax');
    expect(kind('Math.floor(x)')).toBe('unsafe');
    expect(kind('f(x) = y')).toBe('unsafe');
  });
  it('classifies limits, unbalanced parentheses and empty bodies', () => {
    expect(kind('f(x) =')).toBe('syntax');
    expect(kind('(x + 1')).toBe('syntax');
    expect(kind('x + 1)')).toBe('syntax');
    expect(kind('x + 10000')).toBe('limit');
    expect(kind('((((((((x))))))))')).toBe('limit');
    expect(kind('1+1+1+1+1+1+1+1+1+1+1+1')).toBe('limit');
    expect(kind('x'.repeat(1) + ' + 1'.repeat(40))).toBe('limit');
    expect(kind('return x;')).toBe('unsafe');
    expect(kind('f(x) = f(x)')).toBe('unsafe');
    expect(kind('f(x, x) = x')).toBe('syntax');
    expect(kind('f(x, y, z) = x')).toBe('unsafe');
    expect(kind('x > 2')).toBe('syntax');
    expect(kind('')).toBe('syntax');
  });
  it('rejects Markdown, prose and 10 kB strings without throwing', () => {
    expect(kind('```python\ndef f(x): return x\n```')).toBe('unsafe');
    expect(kind('The answer is 42.')).toBe('unsafe');
    expect(kind('x + 1'.repeat(2000))).toBe('limit');
  });
});
