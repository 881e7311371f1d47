// Held-out eval sets (spec 5.2, 5.3): deterministic generators, JSONL serialisation, and the normalised
// item form the scorer uses. The committed fixtures in tests/fixtures/eval are these generators' output.
import { evaluateExpr, parseProgram, printExpr, type BinaryOp, type Expr } from '../arith/index.ts';
import type { EvalItem, EvalSetName } from '../config.ts';
import { mulberry32, Rng } from '../random.ts';

export interface ArithEvalRow {
  id: string;
  prompt: string;
  answer: string;
  difficulty: string;
  metadata: {
    a: number;
    b: number;
    operation: string;
    result: number;
    difficulty: string;
    number_range: string;
  };
}

export interface ExprEvalRow {
  id: string;
  prompt: string;
  answer: string;
  difficulty: string;
  metadata: { expression: string; operation: string; difficulty: string };
}

/** What the scorer needs of any eval item. */
export const ARITH_EVAL_200_SEED = 20250506;
export const ARITH_EXPR_EVAL_100_SEED = 20250507;

interface Tier {
  name: string;
  n: number;
  lo: number;
  hi: number;
  ops: string[];
  range: string;
}

/** The tiers of morgan/arithmetic_eval (spec 5.2), in generation order. */
export const ARITH_TIERS: readonly Tier[] = [
  { name: 'very_easy', n: 30, lo: 0, hi: 5, ops: ['+'], range: '0-5' },
  { name: 'easy', n: 40, lo: 0, hi: 10, ops: ['+', '-', '*'], range: '0-10' },
  { name: 'medium', n: 50, lo: 0, hi: 20, ops: ['+', '-', '*'], range: '0-20' },
  { name: 'hard', n: 40, lo: 10, hi: 50, ops: ['+', '-', '*'], range: '10-50' },
  { name: 'very_hard', n: 40, lo: 20, hi: 100, ops: ['+', '-', '*', '/'], range: '20-100' },
];

type Rand = () => number;
const randInt = (rng: Rand, lo: number, hi: number) => lo + Math.floor(rng() * (hi - lo + 1));
const choice = <T>(rng: Rand, arr: readonly T[]) => arr[Math.floor(rng() * arr.length)];

function applyOp(a: number, op: string, b: number): number {
  if (op === '+') return a + b;
  if (op === '-') return a - b;
  if (op === '*') return a * b;
  return a / b;
}

/** One draw of the spec 5.2 procedure: op, a, then b (a divisor of a for '/'); null = restart. */
export function drawTierItem(rng: Rand, tier: Tier): { a: number; b: number; op: string } | null {
  const op = choice(rng, tier.ops);
  const a = randInt(rng, tier.lo, tier.hi);
  let b: number;
  if (op === '/') {
    const divs: number[] = [];
    for (let d = 2; d <= Math.floor(a / 2); d++) if (a % d === 0) divs.push(d);
    if (divs.length === 0) return null;
    b = choice(rng, divs);
  } else {
    b = randInt(rng, tier.lo, tier.hi);
  }
  return { a, b, op };
}

export const calculatePrompt = (expr: string) => `Calculate: ${expr} = `;

export function generateArithEval200(): ArithEvalRow[] {
  const rng = mulberry32(ARITH_EVAL_200_SEED);
  const used = new Set<string>();
  const rows: Omit<ArithEvalRow, 'id'>[] = [];
  for (const tier of ARITH_TIERS) {
    let made = 0;
    while (made < tier.n) {
      const d = drawTierItem(rng, tier);
      if (!d) continue;
      const prompt = calculatePrompt(`${d.a} ${d.op} ${d.b}`);
      if (used.has(prompt)) continue;
      used.add(prompt);
      const result = applyOp(d.a, d.op, d.b);
      rows.push({
        prompt,
        answer: String(result),
        difficulty: tier.name,
        metadata: {
          a: d.a,
          b: d.b,
          operation: d.op,
          result,
          difficulty: tier.name,
          number_range: tier.range,
        },
      });
      made++;
    }
  }
  shuffleWith(rng, rows);
  return rows.map((r, k) => ({ id: `ae200-${String(k).padStart(3, '0')}`, ...r }));
}

function shuffleWith<T>(rng: Rand, arr: T[]): void {
  for (let i = arr.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [arr[i], arr[j]] = [arr[j], arr[i]];
  }
}

// ---- arith_expr_eval_100 (spec 5.3) ----

const int = (v: number): Expr =>
  v < 0 ? { type: 'neg', operand: { type: 'int', value: BigInt(-v) } } : { type: 'int', value: BigInt(v) };
const bin = (op: BinaryOp, left: Expr, right: Expr): Expr => ({ type: 'bin', op, left, right });

const EXPR_TIER_SIZE = 20;
const NESTED_MAGNITUDE = 100_000n;
const ARITH_MAGNITUDE = 1_000_000_000n;

interface ExprTier {
  name: string;
  draw(rng: Rand): Expr | null;
  maxMagnitude: bigint;
  /** The printed form must contain parentheses (the tier is about them). */
  needsParens: boolean;
}

const PM: BinaryOp[] = ['+', '-', '*'];
const ALL: BinaryOp[] = ['+', '-', '*', '//', '%'];

/**
 * Draw order per tier is fixed here and pinned by the fixture's SHA-256 (tests/unit/selfplay/evalsets.test.ts).
 * A draw that fails its tier's conditions (div0, magnitude, duplicate, missing parentheses) is redrawn.
 */
export const EXPR_TIERS: readonly ExprTier[] = [
  {
    name: 'floordiv_mod',
    maxMagnitude: ARITH_MAGNITUDE,
    needsParens: false,
    draw: (rng) => {
      const op = choice(rng, ['//', '%'] as BinaryOp[]);
      const a = randInt(rng, 10, 99);
      const b = randInt(rng, 2, 9);
      return bin(op, int(a), int(b));
    },
  },
  {
    name: 'precedence',
    maxMagnitude: ARITH_MAGNITUDE,
    needsParens: false,
    draw: (rng) => {
      const op1 = choice(rng, PM);
      const op2 = choice(rng, PM);
      const a = randInt(rng, 1, 20);
      const b = randInt(rng, 1, 20);
      const c = randInt(rng, 1, 20);
      // Build by precedence so the printed form has no parentheses: a op1 b op2 c as Python reads it.
      const p1 = op1 === '*' ? 2 : 1;
      const p2 = op2 === '*' ? 2 : 1;
      return p2 > p1
        ? bin(op1, int(a), bin(op2, int(b), int(c)))
        : bin(op2, bin(op1, int(a), int(b)), int(c));
    },
  },
  {
    name: 'parentheses',
    maxMagnitude: ARITH_MAGNITUDE,
    needsParens: true,
    draw: (rng) => {
      const side = choice(rng, ['left', 'right']);
      const inner = choice(rng, ALL);
      const outer = choice(rng, ALL);
      const a = randInt(rng, 1, 30);
      const b = randInt(rng, 1, 30);
      const c = randInt(rng, 1, 30);
      return side === 'left'
        ? bin(outer, bin(inner, int(a), int(b)), int(c))
        : bin(outer, int(a), bin(inner, int(b), int(c)));
    },
  },
  {
    name: 'negative_floor',
    maxMagnitude: ARITH_MAGNITUDE,
    needsParens: true,
    draw: (rng) => {
      const op = choice(rng, ['//', '%'] as BinaryOp[]);
      const a = randInt(rng, 1, 50);
      const b = randInt(rng, 1, 50);
      const c = randInt(rng, 2, 9);
      if (a >= b) return null;
      return bin(op, bin('-', int(a), int(b)), int(c));
    },
  },
  {
    name: 'nested',
    maxMagnitude: NESTED_MAGNITUDE,
    needsParens: true,
    draw: (rng) => {
      const shape = choice(rng, ['pair', 'left', 'right']);
      const [o1, o2, o3] = [choice(rng, ALL), choice(rng, ALL), choice(rng, ALL)];
      const [a, b, c, d] = [
        randInt(rng, 1, 50),
        randInt(rng, 1, 50),
        randInt(rng, 1, 50),
        randInt(rng, 1, 50),
      ];
      if (shape === 'pair') return bin(o2, bin(o1, int(a), int(b)), bin(o3, int(c), int(d)));
      if (shape === 'left') return bin(o3, bin(o2, bin(o1, int(a), int(b)), int(c)), int(d));
      return bin(o1, int(a), bin(o2, int(b), bin(o3, int(c), int(d))));
    },
  },
];

export function generateArithExprEval100(): ExprEvalRow[] {
  const rng = mulberry32(ARITH_EXPR_EVAL_100_SEED);
  const used = new Set<string>();
  const rows: Omit<ExprEvalRow, 'id'>[] = [];
  for (const tier of EXPR_TIERS) {
    let made = 0;
    while (made < EXPR_TIER_SIZE) {
      const e = tier.draw(rng);
      if (!e) continue;
      const expression = printExpr(e);
      if (tier.needsParens && !expression.includes('(')) continue;
      const limits = {
        maxSourceChars: 120,
        maxBinaryOps: 10,
        maxParenDepth: 6,
        maxMagnitude: tier.maxMagnitude,
        maxArity: 2,
      };
      const value = evaluateExpr(e, new Map(), limits);
      if (!value.ok) continue;
      const prompt = calculatePrompt(expression);
      if (used.has(prompt)) continue;
      used.add(prompt);
      rows.push({
        prompt,
        answer: value.value.toString(),
        difficulty: tier.name,
        metadata: { expression, operation: e.type === 'bin' ? e.op : '', difficulty: tier.name },
      });
      made++;
    }
  }
  shuffleWith(rng, rows);
  return rows.map((r, k) => ({ id: `aee100-${String(k).padStart(3, '0')}`, ...r }));
}

// ---- items drawn like arith_eval_200, excluding its prompts ----

function tierCandidates(
  tier: (typeof ARITH_TIERS)[number],
): Map<string, { a: number; b: number; op: string }> {
  const out = new Map<string, { a: number; b: number; op: string }>();
  for (const op of tier.ops) {
    for (let a = tier.lo; a <= tier.hi; a++) {
      if (op === '/') {
        for (let d = 2; d <= Math.floor(a / 2); d++)
          if (a % d === 0) out.set(calculatePrompt(`${a} / ${d}`), { a, b: d, op });
      } else {
        for (let b = tier.lo; b <= tier.hi; b++) out.set(calculatePrompt(`${a} ${op} ${b}`), { a, b, op });
      }
    }
  }
  return out;
}

function toItem(id: string, tier: string, d: { a: number; b: number; op: string }): EvalItem {
  const { a, b, op } = d;
  const result = op === '+' ? a + b : op === '-' ? a - b : op === '*' ? a * b : a / b;
  return {
    id,
    prompt: calculatePrompt(`${a} ${op} ${b}`),
    answer: String(result),
    tier,
    op,
    expression: `${a} ${op === '/' ? '//' : op} ${b}`,
  };
}

/**
 * Items drawn like arith_eval_200 but none of its prompts (the GRPO training set, the workshop dev set): tier quotas proportional to the eval tiers; a tier whose distinct prompts run out
 * gives what it has and passes the rest of its quota to the next tiers. Never loops forever: a tier is
 * drawn by the spec 5.2 procedure only while more candidates remain than are still needed.
 */
export function generateTierItems(size: number, seed: number, idPrefix: string): EvalItem[] {
  const rng = new Rng(seed);
  const exclude = new Set(generateArithEval200().map((r) => r.prompt));
  const total = ARITH_TIERS.reduce((a, t) => a + t.n, 0);
  const quotas = ARITH_TIERS.map((t) => Math.floor((size * t.n) / total));
  for (let k = 0; quotas.reduce((a, b) => a + b, 0) < size; k++) quotas[k % quotas.length]++;
  const picked: { tier: string; d: { a: number; b: number; op: string } }[] = [];
  // Tiers overlap (e.g. easy ⊂ medium's range): a prompt taken by an earlier tier is not a candidate later.
  const taken = new Set<string>();
  let carry = 0;
  ARITH_TIERS.forEach((tier, ti) => {
    const want = quotas[ti] + carry;
    const cands = tierCandidates(tier);
    for (const p of exclude) cands.delete(p);
    for (const p of taken) cands.delete(p);
    if (want >= cands.size) {
      for (const [prompt, d] of rng.shuffle([...cands.entries()])) {
        taken.add(prompt);
        picked.push({ tier: tier.name, d });
      }
      carry = want - cands.size;
      return;
    }
    let got = 0;
    while (got < want) {
      const d = drawTierItem(() => rng.next(), tier);
      if (!d) continue;
      const prompt = calculatePrompt(`${d.a} ${d.op} ${d.b}`);
      if (!cands.has(prompt) || taken.has(prompt)) continue;
      taken.add(prompt);
      picked.push({ tier: tier.name, d });
      got++;
    }
    carry = 0;
  });
  rng.shuffle(picked);
  return picked.map((p, k) => toItem(`${idPrefix}-${String(k).padStart(5, '0')}`, p.tier, p.d));
}

/** Seed of workshop_dev_200: the development set of the workshop model (tuning, stopping rules). */
export const WORKSHOP_DEV_SEED = 20261206;

/** workshop_dev_200: 200 items drawn like arith_eval_200 with another seed, none of its prompts. */
export function generateWorkshopDev200(): EvalItem[] {
  return generateTierItems(200, WORKSHOP_DEV_SEED, 'wd200');
}

export function rowsToJsonl(rows: readonly object[]): string {
  return rows.map((r) => JSON.stringify(r) + '\n').join('');
}

export function generateEvalSetJsonl(name: EvalSetName): string {
  if (name === 'arith_eval_200') return rowsToJsonl(generateArithEval200());
  if (name === 'arith_expr_eval_100') return rowsToJsonl(generateArithExprEval100());
  const rows: ExprEvalRow[] = generateWorkshopDev200().map((i) => ({
    id: i.id,
    prompt: i.prompt,
    answer: i.answer,
    difficulty: i.tier,
    metadata: { expression: i.expression, operation: i.op, difficulty: i.tier },
  }));
  return rowsToJsonl(rows);
}

export function toEvalItems(name: EvalSetName): EvalItem[] {
  if (name === 'workshop_dev_200') return generateWorkshopDev200();
  if (name === 'arith_eval_200') {
    return generateArithEval200().map((r) => ({
      id: r.id,
      prompt: r.prompt,
      answer: r.answer,
      tier: r.difficulty,
      op: r.metadata.operation,
      expression: `${r.metadata.a} ${r.metadata.operation === '/' ? '//' : r.metadata.operation} ${r.metadata.b}`,
    }));
  }
  return generateArithExprEval100().map((r) => ({
    id: r.id,
    prompt: r.prompt,
    answer: r.answer,
    tier: r.difficulty,
    op: r.metadata.operation,
    expression: r.metadata.expression,
  }));
}

/** Canonical closed expressions of an eval set (for the contamination count of spec 5.2). */
export function evalCanonicalExpressions(name: EvalSetName): Set<string> {
  return canonicalExpressions(toEvalItems(name));
}

/** The canonical printed form of each item's expression (the item's own text where it does not parse). */
export function canonicalExpressions(items: readonly Pick<EvalItem, 'expression'>[]): Set<string> {
  const out = new Set<string>();
  for (const item of items) {
    const p = parseProgram(item.expression);
    out.add(p.ok ? printExpr(p.value.body) : item.expression);
  }
  return out;
}

/** SHA-256 hex of a string (Web Crypto: the same in browsers and Node ≥ 20). */
export async function sha256Hex(text: string): Promise<string> {
  const digest = await globalThis.crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}
