// Typed store errors, so the trainer can tell "pause and tell the user" (full, locked) from bugs, and
// so every message says what happened and what to do about it.

export class StoreError extends Error {
  override name = 'StoreError';
}

/** The browser's quota or the disk ran out. Nothing was written: the run is still at its last committed step. */
export class StoreFullError extends StoreError {
  override name = 'StoreFullError';
  constructor(message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
  }
}

/** Another tab or process holds the run's writer lock. */
export class RunLockedError extends StoreError {
  override name = 'RunLockedError';
  constructor(
    message: string,
    /** Who holds it, as recorded by the holder (pid + host in Node, tab id + time in the browser). */
    readonly holder: string,
  ) {
    super(message);
  }
}

/** A file or record was written by a newer (or unknown) TabZero format. */
export class FormatVersionError extends StoreError {
  override name = 'FormatVersionError';
}

/** Stored data failed an integrity check (hash, length, header) or does not parse. */
export class CorruptDataError extends StoreError {
  override name = 'CorruptDataError';
}

/** The run does not exist. */
export class RunNotFoundError extends StoreError {
  override name = 'RunNotFoundError';
}

/** QuotaExceededError from IndexedDB (a DOMException, sometimes wrapped as a transaction's abort error). */
export function isQuotaError(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { name?: unknown; code?: unknown; inner?: unknown; cause?: unknown };
  if (e.name === 'QuotaExceededError' || e.code === 22) return true;
  return e.cause !== undefined && e.cause !== err ? isQuotaError(e.cause) : false;
}

/** ENOSPC (disk full) or EDQUOT (user quota) from Node's fs. */
export function isDiskFullError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

export function errorText(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}
