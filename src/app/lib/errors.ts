// Turns whatever a worker call rejected with into a message a person can act on (UserError: what
// happened, and what to do). The worker may throw a UserError-shaped object (kept as is), an Error, or
// — while the worker side of the protocol is still landing — comlink's TypeError for a missing method.
import type { UserError } from '../../protocol.ts';

export function isUserError(value: unknown): value is UserError {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.title === 'string' && typeof v.message === 'string' && typeof v.action === 'string';
}

function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (typeof err === 'object' && err !== null && typeof (err as { message?: unknown }).message === 'string') {
    return (err as { message: string }).message;
  }
  return String(err);
}

/** Comlink applies the method found at the call's path; a method the worker lacks fails like this. */
function isMissingMethod(message: string): boolean {
  return /reading 'apply'|\.apply is not a function|is not a function|undefined is not an object/.test(
    message,
  );
}

// Patterns of the causes a person can do something about, in the words that tell them what.
const KNOWN_CAUSES: { test: RegExp; title: string; action: string }[] = [
  {
    test: /QuotaExceeded|quota/i,
    title: 'Browser storage is full',
    action:
      'Delete old runs or cached models in the Runs tab, or allow this site more storage, then try again.',
  },
  {
    test: /out of memory|OutOfMemory|allocation failed/i,
    title: 'The GPU ran out of memory',
    action:
      'Choose a smaller batch (batchPerGroup, microBatch) or shorter generations, or use LoRA instead of full fine-tuning.',
  },
  {
    test: /device (was )?lost|DeviceLost/i,
    title: 'The GPU device was lost',
    action: 'Wait for the trainer to recover, or reload the page; the run resumes from its last checkpoint.',
  },
  {
    test: /Failed to fetch|NetworkError|ERR_INTERNET|ENOTFOUND|unreachable|offline/i,
    title: 'The download could not start',
    action: 'Check the network or the mirror address; or load local files or the built-in tiny model.',
  },
  {
    test: /WebGPU|navigator\.gpu|adapter/i,
    title: 'WebGPU is not available',
    action: 'Use a current Chrome or Edge on a machine with a GPU; see the GPU panel for details.',
  },
];

/** `what` names the action that failed, e.g. "Loading the model". */
export function toUserError(err: unknown, what: string): UserError {
  if (isUserError(err)) return { title: err.title, message: err.message, action: err.action };
  const message = messageOf(err);
  if (isMissingMethod(message)) {
    return {
      title: `${what} is not available yet`,
      message: `The trainer worker in this build does not provide this yet (${message}).`,
      action: 'Use a newer build of TabZero; everything else on the page keeps working.',
    };
  }
  for (const cause of KNOWN_CAUSES) {
    if (cause.test.test(message))
      return { title: cause.title, message: `${what} failed: ${message}`, action: cause.action };
  }
  return {
    title: `${what} failed`,
    message,
    action: 'Try again; if it keeps failing, reload the page (runs resume from their last checkpoint).',
  };
}

export class TimeoutError extends Error {
  override name = 'TimeoutError';
}

/** Rejects after `ms` so that a call which should be quick never leaves the UI waiting forever. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new TimeoutError(`${what} got no answer within ${Math.round(ms / 1000)} s`)),
      ms,
    );
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
