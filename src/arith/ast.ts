// AST of AZ-Arith. Unary plus never reaches the AST (the parser drops it; the printer would anyway).

export type BinaryOp = '+' | '-' | '*' | '//' | '%';

export type Expr =
  | { type: 'int'; value: bigint }
  | { type: 'var'; name: string }
  | { type: 'neg'; operand: Expr }
  | { type: 'bin'; op: BinaryOp; left: Expr; right: Expr };

export interface Program {
  /** Declared variables in declaration order; [] for a closed expression. */
  params: string[];
  body: Expr;
  /** How the source declared its variables (bare expressions declare the ones they use). */
  form: 'header' | 'arrow' | 'bare';
}

export function binaryOpCount(e: Expr): number {
  switch (e.type) {
    case 'int':
    case 'var':
      return 0;
    case 'neg':
      return binaryOpCount(e.operand);
    case 'bin':
      return 1 + binaryOpCount(e.left) + binaryOpCount(e.right);
  }
}

export function usedVariables(e: Expr, into: Set<string> = new Set()): Set<string> {
  if (e.type === 'var') into.add(e.name);
  else if (e.type === 'neg') usedVariables(e.operand, into);
  else if (e.type === 'bin') {
    usedVariables(e.left, into);
    usedVariables(e.right, into);
  }
  return into;
}
