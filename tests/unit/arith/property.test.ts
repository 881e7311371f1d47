// Property tests: the BigInt evaluator against an independent Number-based implementation of Python
// semantics on thousands of random programs, and canonical printing as a fixed point.
import { describe, expect, it } from 'vitest';
import { evaluateProgram, parseProgram, printProgram } from '../../../src/arith/index.ts';
import { Rng } from '../../../src/random.ts';

type Node =
  | { k: 'n'; v: number }
  | { k: 'v'; name: 'x' | 'y' }
  | { k: 'neg'; e: Node }
  | { k: 'b'; op: string; l: Node; r: Node };

const OPS = ['+', '-', '*', '//', '%'];

function randomNode(rng: Rng, depth: number, budget: { ops: number }): Node {
  const roll = rng.next();
  if (depth > 0 && budget.ops > 0 && roll < 0.55) {
    budget.ops--;
    const op = rng.choice(OPS);
    return { k: 'b', op, l: randomNode(rng, depth - 1, budget), r: randomNode(rng, depth - 1, budget) };
  }
  if (roll < 0.65) return { k: 'neg', e: randomNode(rng, depth - 1, budget) };
  if (roll < 0.85) return { k: 'v', name: rng.choice(['x', 'y'] as const) };
  return { k: 'n', v: rng.int(0, 99) };
}

/** Fully parenthesised source with random spacing: structure is explicit, so no precedence is assumed. */
function source(n: Node, rng: Rng): string {
  const sp = () => (rng.next() < 0.3 ? '' : ' ');
  switch (n.k) {
    case 'n':
      return String(n.v);
    case 'v':
      return n.name;
    case 'neg':
      return `-(${source(n.e, rng)})`;
    case 'b':
      return `(${source(n.l, rng)}${sp()}${n.op}${sp()}${source(n.r, rng)})`;
  }
}

class Fail {
  constructor(readonly kind: string) {}
}

/** Independent oracle: Numbers, Math.floor, left-to-right, magnitude check after every node. */
function oracle(n: Node, env: Record<string, number>): number {
  let v: number;
  if (n.k === 'n') v = n.v;
  else if (n.k === 'v') v = env[n.name];
  else if (n.k === 'neg') v = -oracle(n.e, env);
  else {
    const a = oracle(n.l, env);
    const b = oracle(n.r, env);
    if ((n.op === '//' || n.op === '%') && b === 0) throw new Fail('div0');
    if (n.op === '+') v = a + b;
    else if (n.op === '-') v = a - b;
    else if (n.op === '*') v = a * b;
    else if (n.op === '//') v = Math.floor(a / b);
    else v = a - b * Math.floor(a / b);
  }
  if (Math.abs(v) > 1e9) throw new Fail('overflow');
  return v === 0 ? 0 : v; // -0 → 0
}

function depthOf(n: Node): number {
  if (n.k === 'b') return 1 + Math.max(depthOf(n.l), depthOf(n.r));
  if (n.k === 'neg') return 1 + depthOf(n.e);
  return 0;
}

describe('evaluator vs an independent Number implementation', () => {
  it('agrees on 5000 random programs and inputs', () => {
    const rng = new Rng(12345);
    const limits = {
      maxSourceChars: 4096,
      maxBinaryOps: 10,
      maxParenDepth: 64,
      maxMagnitude: 1_000_000_000n,
      maxArity: 2,
    };
    let checked = 0;
    let errors = 0;
    for (let trial = 0; trial < 5000; trial++) {
      const node = randomNode(rng, 4, { ops: 6 });
      if (depthOf(node) > 12) continue;
      const src = `f(x, y) = ${source(node, rng)}`;
      const parsed = parseProgram(src, limits);
      expect(parsed.ok, src).toBe(true);
      if (!parsed.ok) continue;
      const x = rng.int(-1000, 1000);
      const y = rng.int(-1000, 1000);
      let want: string;
      try {
        want = String(oracle(node, { x, y }));
      } catch (e) {
        if (!(e instanceof Fail)) throw e;
        want = e.kind;
        errors++;
      }
      const got = evaluateProgram(parsed.value, [BigInt(x), BigInt(y)], limits);
      expect(got.ok ? got.value.toString() : got.kind, `${src} at (${x}, ${y})`).toBe(want);
      checked++;
    }
    expect(checked).toBeGreaterThan(4000);
    expect(errors).toBeGreaterThan(50); // both error classes are exercised
  });

  it('canonical printing is a fixed point and preserves values', () => {
    const rng = new Rng(99);
    const limits = {
      maxSourceChars: 4096,
      maxBinaryOps: 10,
      maxParenDepth: 64,
      maxMagnitude: 1_000_000_000n,
      maxArity: 2,
    };
    for (let trial = 0; trial < 2000; trial++) {
      const node = randomNode(rng, 4, { ops: 6 });
      const p1 = parseProgram(`f(x, y) = ${source(node, rng)}`, limits);
      if (!p1.ok) throw new Error(p1.message);
      const canon = printProgram(p1.value);
      const p2 = parseProgram(canon, limits);
      if (!p2.ok) throw new Error(`${canon}: ${p2.message}`);
      expect(printProgram(p2.value)).toBe(canon);
      const inputs = [BigInt(rng.int(-50, 50)), BigInt(rng.int(-50, 50))];
      const v1 = evaluateProgram(p1.value, inputs, limits);
      const v2 = evaluateProgram(p2.value, inputs, limits);
      expect(v2).toEqual(v1);
    }
  });
});
