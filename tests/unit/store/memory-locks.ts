// An in-process stand-in for navigator.locks (exclusive locks, ifAvailable), which Node lacks: the same
// contract the browser gives, held until the callback's promise settles.
import type { LockManagerLike } from '../../../src/store/web-lock.ts';

export class MemoryLocks implements LockManagerLike {
  readonly held = new Set<string>();

  async request(
    name: string,
    options: { ifAvailable?: boolean },
    callback: (lock: unknown) => unknown,
  ): Promise<unknown> {
    if (this.held.has(name)) {
      if (!options.ifAvailable) throw new Error('MemoryLocks: only ifAvailable requests are supported');
      return callback(null);
    }
    this.held.add(name);
    try {
      return await callback({ name, mode: 'exclusive' });
    } finally {
      this.held.delete(name);
    }
  }
}
