// AZ-Arith: the arithmetic language of TabZero's tasks (spec 4.1).
export type { BinaryOp, Expr, Program } from './ast.ts';
export { binaryOpCount, usedVariables } from './ast.ts';
export type { ArithError, ArithErrorKind, ArithResult } from './errors.ts';
export { DEFAULT_ARITH_LIMITS, MAX_LITERAL_DIGITS, variableNames, type ArithLimits } from './limits.ts';
export { parseProgram } from './parser.ts';
export { evaluateExpr, evaluateProgram, floorDiv, floorMod } from './evaluate.ts';
export { closedForm, printBody, printExpr, printProgram, substitute } from './print.ts';
