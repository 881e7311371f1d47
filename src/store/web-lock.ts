// One writer per run in the browser: a Web Lock (navigator.locks) named after the run, held for as long
// as the writer is open. Web Locks are released by the browser when the tab closes or crashes, so there
// is no stale lock to clean up. Browser-safe; tests pass an in-memory lock manager.

/** The part of the Web Locks API used here (navigator.locks). */
export interface LockManagerLike {
  request(
    name: string,
    options: { ifAvailable?: boolean; mode?: 'exclusive' | 'shared' },
    callback: (lock: unknown) => unknown,
  ): Promise<unknown>;
}

export function runLockName(runId: string): string {
  return `tabzero-run:${runId}`;
}

export function defaultLockManager(): LockManagerLike | null {
  const nav = (globalThis as { navigator?: { locks?: LockManagerLike } }).navigator;
  return nav?.locks ?? null;
}

/** Takes the lock if nobody holds it: resolves to a release function, or null when it is held. */
export function tryAcquireLock(locks: LockManagerLike, name: string): Promise<(() => void) | null> {
  return new Promise((resolve, reject) => {
    locks
      .request(name, { ifAvailable: true, mode: 'exclusive' }, (lock) => {
        if (!lock) {
          resolve(null);
          return undefined;
        }
        // The lock is held until the promise returned here settles.
        return new Promise<void>((release) => resolve(() => release()));
      })
      .catch(reject);
  });
}
