// Typed errors of AZ-Arith (spec 4.1). Every caller sees one of these kinds; nothing is thrown past
// the module boundary.

export type ArithErrorKind = 'syntax' | 'unsafe' | 'limit' | 'arity' | 'div0' | 'overflow';

export interface ArithError {
  ok: false;
  kind: ArithErrorKind;
  message: string;
}

export type ArithResult<T> = { ok: true; value: T } | ArithError;

export function arithError(kind: ArithErrorKind, message: string): ArithError {
  return { ok: false, kind, message };
}

export function okResult<T>(value: T): { ok: true; value: T } {
  return { ok: true, value };
}
