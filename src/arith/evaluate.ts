// BigInt evaluator with Python semantics (floor division, modulo with the divisor's sign). Evaluation
// is left to right, depth first; the first error met is returned as a typed value (spec 4.1).
import type { Expr, Program } from './ast.ts';
import { arithError, okResult, type ArithResult } from './errors.ts';
import { DEFAULT_ARITH_LIMITS, type ArithLimits } from './limits.ts';

/** Python's a // b; the caller guarantees b ≠ 0. */
export function floorDiv(a: bigint, b: bigint): bigint {
  let q = a / b;
  if (a % b !== 0n && a < 0n !== b < 0n) q -= 1n;
  return q;
}

/** Python's a % b (sign of b); the caller guarantees b ≠ 0. */
export function floorMod(a: bigint, b: bigint): bigint {
  return a - b * floorDiv(a, b);
}

const abs = (v: bigint) => (v < 0n ? -v : v);

class EvalFailure {
  constructor(
    readonly kind: 'div0' | 'overflow',
    readonly message: string,
  ) {}
}

function evalExpr(e: Expr, env: Map<string, bigint>, max: bigint): bigint {
  let v: bigint;
  switch (e.type) {
    case 'int':
      v = e.value;
      break;
    case 'var':
      v = env.get(e.name)!;
      break;
    case 'neg':
      v = -evalExpr(e.operand, env, max);
      break;
    case 'bin': {
      const a = evalExpr(e.left, env, max);
      const b = evalExpr(e.right, env, max);
      if ((e.op === '//' || e.op === '%') && b === 0n) throw new EvalFailure('div0', `${a} ${e.op} 0`);
      if (e.op === '+') v = a + b;
      else if (e.op === '-') v = a - b;
      else if (e.op === '*') v = a * b;
      else if (e.op === '//') v = floorDiv(a, b);
      else v = floorMod(a, b);
      break;
    }
  }
  if (abs(v) > max) throw new EvalFailure('overflow', `intermediate value ${v} exceeds ${max} in magnitude`);
  return v;
}

/** Evaluate a closed expression AST (no variables) or any AST under an environment. */
export function evaluateExpr(
  e: Expr,
  env: Map<string, bigint> = new Map(),
  limits: ArithLimits = DEFAULT_ARITH_LIMITS,
): ArithResult<bigint> {
  try {
    return okResult(evalExpr(e, env, limits.maxMagnitude));
  } catch (err) {
    if (err instanceof EvalFailure) return arithError(err.kind, err.message);
    return arithError('overflow', `evaluation failed: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** Evaluate a program on one input tuple; the tuple's length must equal the declared arity. */
export function evaluateProgram(
  program: Program,
  inputs: readonly bigint[],
  limits: ArithLimits = DEFAULT_ARITH_LIMITS,
): ArithResult<bigint> {
  if (inputs.length !== program.params.length) {
    return arithError('arity', `program takes ${program.params.length} input(s), got ${inputs.length}`);
  }
  const env = new Map<string, bigint>();
  program.params.forEach((name, k) => env.set(name, inputs[k]));
  return evaluateExpr(program.body, env, limits);
}
