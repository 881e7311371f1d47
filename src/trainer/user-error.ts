// Errors as the user reads them: what happened and what to do (a UserError), from whatever was thrown.
import { DeviceLostError } from '../engine/engine.ts';
import type { UserError } from '../protocol.ts';
import { StoreFullError } from '../store/errors.ts';

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A UserError an Error carries (e.g. the ONNX check's memory error), shown as is. */
export function carriedUserError(err: unknown): UserError | null {
  if (!(err instanceof Error) || !('userError' in err)) return null;
  const u = err.userError as Partial<UserError> | null;
  return u && typeof u.title === 'string' && typeof u.message === 'string' && typeof u.action === 'string'
    ? (u as UserError)
    : null;
}

export function userError(err: unknown): UserError {
  const carried = carriedUserError(err);
  if (carried) return carried;
  if (err instanceof StoreFullError)
    return {
      title: 'Storage is full',
      message: err.message,
      action:
        'The run is paused at its last committed step. Delete old runs or export and remove them, then resume.',
    };
  if (err instanceof DeviceLostError)
    return {
      title: 'The GPU device was lost',
      message: err.message,
      action:
        'TabZero re-acquires the device and resumes from the last checkpoint; if this repeats, close other GPU-heavy tabs.',
    };
  const message = messageOf(err);
  if (/out of memory|OutOfMemory|allocation/i.test(message))
    return {
      title: 'Out of GPU memory',
      message,
      action: 'Choose a smaller preset (workshop or smoke), a smaller batch, or close other GPU-heavy tabs.',
    };
  return {
    title: 'Something went wrong',
    message,
    action: 'Check the message; the run stays at its last committed step.',
  };
}

/** Errors that carry a UserError (what happened, what to do) reach the page as that UserError. */
export function withUserErrors<T>(p: Promise<T>): Promise<T> {
  return p.catch((err: unknown) => {
    throw carriedUserError(err) ?? err;
  });
}
