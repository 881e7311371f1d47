// Canonical printer (spec 4.1): single spaces around binary operators, minimum parentheses for
// precedence and left-associativity, negative numbers as `(-3)` inside operations. Program equality and
// buffer deduplication compare these strings.
import type { BinaryOp, Expr, Program } from './ast.ts';

const PRECEDENCE: Record<BinaryOp, number> = { '+': 1, '-': 1, '*': 2, '//': 2, '%': 2 };

/** Unary minus on a literal (or on a substituted input): printed like a number. */
function isNegativeNumber(e: Expr): boolean {
  return e.type === 'neg' && e.operand.type === 'int';
}

function needsParens(child: Expr, parentOp: BinaryOp, side: 'left' | 'right'): boolean {
  if (isNegativeNumber(child)) return true;
  if (child.type !== 'bin') return false;
  const c = PRECEDENCE[child.op];
  const p = PRECEDENCE[parentOp];
  return c < p || (side === 'right' && c === p);
}

/**
 * Canonical text of an expression. `opText` may print a binary node's operator differently (the workshop
 * deduction prompt shows an exact `//` as `/`); the structure and parentheses stay canonical.
 */
export function printExpr(e: Expr, opText: (node: Expr & { type: 'bin' }) => string = (n) => n.op): string {
  switch (e.type) {
    case 'int':
      return e.value.toString();
    case 'var':
      return e.name;
    case 'neg': {
      const inner = e.operand;
      if (inner.type === 'int') return `-${inner.value}`;
      const s = printExpr(inner, opText);
      return inner.type === 'bin' || isNegativeNumber(inner) ? `-(${s})` : `-${s}`;
    }
    case 'bin': {
      const l = printExpr(e.left, opText);
      const r = printExpr(e.right, opText);
      const left = needsParens(e.left, e.op, 'left') ? `(${l})` : l;
      const right = needsParens(e.right, e.op, 'right') ? `(${r})` : r;
      return `${left} ${opText(e)} ${right}`;
    }
  }
}

/** A program with arity ≥ 1 prints in header form; a closed expression prints alone. */
export function printProgram(p: Program): string {
  const body = printExpr(p.body);
  return p.params.length === 0 ? body : `f(${p.params.join(', ')}) = ${body}`;
}

/** The expression part of the canonical form (what follows `f(...) = `). */
export function printBody(p: Program): string {
  return printExpr(p.body);
}

function literal(v: bigint): Expr {
  return v < 0n ? { type: 'neg', operand: { type: 'int', value: -v } } : { type: 'int', value: v };
}

/** Replace each variable with its input value: negative inputs become negative numbers. */
export function substitute(p: Program, inputs: readonly bigint[]): Expr {
  const env = new Map<string, bigint>();
  p.params.forEach((name, k) => env.set(name, inputs[k]));
  const walk = (e: Expr): Expr => {
    if (e.type === 'var') return literal(env.get(e.name)!);
    if (e.type === 'neg') return { type: 'neg', operand: walk(e.operand) };
    if (e.type === 'bin') return { type: 'bin', op: e.op, left: walk(e.left), right: walk(e.right) };
    return e;
  };
  return walk(p.body);
}

/** The closed expression a deduction solver sees: `p[i]`, canonically printed. */
export function closedForm(p: Program, inputs: readonly bigint[]): string {
  return printExpr(substitute(p, inputs));
}
