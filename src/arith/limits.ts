// Size and magnitude limits of AZ-Arith. Defaults live in src/config.ts with the other run knobs.
import { ARITH_LIMIT_DEFAULTS } from '../config.ts';

export interface ArithLimits {
  /** Longest accepted program source, in characters. */
  maxSourceChars: number;
  /** Most binary operators in one program. */
  maxBinaryOps: number;
  /** Deepest parenthesis nesting. */
  maxParenDepth: number;
  /** Largest |value| of any intermediate result (literals and inputs included). */
  maxMagnitude: bigint;
  /** Variables a program may declare: 2 → {x, y}, 3 → {x, y, z}. */
  maxArity: number;
}

/** Literals have at most this many digits (0..9999): part of the grammar, not a run knob. */
export const MAX_LITERAL_DIGITS = 4;

export const DEFAULT_ARITH_LIMITS: ArithLimits = {
  maxSourceChars: ARITH_LIMIT_DEFAULTS.maxSourceChars,
  maxBinaryOps: ARITH_LIMIT_DEFAULTS.maxBinaryOps,
  maxParenDepth: ARITH_LIMIT_DEFAULTS.maxParenDepth,
  maxMagnitude: BigInt(ARITH_LIMIT_DEFAULTS.maxMagnitude),
  maxArity: ARITH_LIMIT_DEFAULTS.maxArity,
};

export function variableNames(maxArity: number): string[] {
  return ['x', 'y', 'z'].slice(0, maxArity);
}
