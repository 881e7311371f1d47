// Browser storage: ask for persistent storage (so the browser does not evict a long run's data under
// pressure) and report usage and quota for the UI. Browser-safe; where navigator.storage is missing
// (Node, old browsers) it reports nulls.
import type { StorageReport } from './types.ts';

interface StorageManagerLike {
  persist?(): Promise<boolean>;
  persisted?(): Promise<boolean>;
  estimate?(): Promise<{ usage?: number; quota?: number }>;
}

function storageManager(): StorageManagerLike | null {
  const nav = (globalThis as { navigator?: { storage?: StorageManagerLike } }).navigator;
  return nav?.storage ?? null;
}

/** Asks for persistent storage; true when granted (Chrome grants it to installed or engaged sites). */
export async function requestPersistentStorage(storage = storageManager()): Promise<boolean> {
  if (!storage?.persist) return false;
  if (storage.persisted && (await storage.persisted())) return true;
  return storage.persist();
}

export async function storageReport(storage = storageManager()): Promise<StorageReport> {
  const estimate = storage?.estimate ? await storage.estimate() : null;
  return {
    usage: estimate?.usage ?? null,
    quota: estimate?.quota ?? null,
    persisted: storage?.persisted ? await storage.persisted() : null,
  };
}

/** "412 MB of 2.1 GB used (persistent)", for the UI and error messages. */
export function describeStorage(r: StorageReport): string {
  const mb = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(1)} GB` : `${Math.round(n / 1e6)} MB`);
  if (r.usage === null || r.quota === null) return 'storage use unknown';
  const kind =
    r.persisted === null ? '' : r.persisted ? ' (persistent)' : ' (may be evicted under storage pressure)';
  return `${mb(r.usage)} of ${mb(r.quota)} used${kind}`;
}
