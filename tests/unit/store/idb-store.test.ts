import 'fake-indexeddb/auto';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CorruptDataError,
  FormatVersionError,
  StoreFullError,
  isQuotaError,
} from '../../../src/store/errors.ts';
import { DB_SCHEMA_VERSION, openTabzeroDb } from '../../../src/store/idb-schema.ts';
import { IdbRunStore } from '../../../src/store/idb-store.ts';
import {
  describeStorage,
  requestPersistentStorage,
  storageReport,
} from '../../../src/store/storage-quota.ts';
import { drive, everything, newRun, stepCommit, tensors } from './fixtures.ts';
import { MemoryLocks } from './memory-locks.ts';

let dbCount = 0;
const dbName = () => `tabzero-idb-${++dbCount}`;

const originalPut = IDBObjectStore.prototype.put;
const originalDelete = IDBObjectStore.prototype.delete;
afterEach(() => {
  IDBObjectStore.prototype.put = originalPut;
  IDBObjectStore.prototype.delete = originalDelete;
});

/** Makes every put into `storeName` throw what the browser throws when the origin's quota is used up. */
function failPutsInto(
  storeName: string,
  error = () => new DOMException('The quota has been exceeded.', 'QuotaExceededError'),
) {
  IDBObjectStore.prototype.put = function (this: IDBObjectStore, ...args: Parameters<IDBObjectStore['put']>) {
    if (this.name === storeName) throw error();
    return originalPut.apply(this, args);
  };
}

describe('IdbRunStore', () => {
  it("opens the database `tabzero` with DESIGN.md's six object stores and the checkpoints' bytes", async () => {
    const db = await openTabzeroDb();
    expect(db.name).toBe('tabzero');
    expect(db.version).toBe(DB_SCHEMA_VERSION);
    expect([...db.objectStoreNames].sort()).toEqual([
      'checkpointData',
      'checkpoints',
      'evals',
      'runs',
      'samples',
      'steps',
      'tasks',
    ]);
    db.close();
  });

  it('keeps checkpoint bytes apart from their manifests, so listing a run hands out no Blob', async () => {
    // Chromium counts a deleted record's blob files against the quota while a Blob read from it lives
    // (until garbage collection): a Runs list that read Blobs would make deleting a run free nothing.
    const name = dbName();
    const store = await IdbRunStore.open({ name, locks: new MemoryLocks() });
    const w = await store.createRun('r', newRun());
    await drive(w, 2, [1, 2]);
    await w.close();
    expect((await (await store.readRun('r')).checkpoints()).map((c) => c.step)).toEqual([1, 2]);
    const db = await openTabzeroDb(name);
    const manifests = await db.getAll('checkpoints');
    expect(manifests.map((m) => Object.keys(m).sort())).toEqual([
      ['manifest', 'runId', 'step'],
      ['manifest', 'runId', 'step'],
    ]);
    expect((await db.getAll('checkpointData')).map((d) => d.weights instanceof Blob)).toEqual([true, true]);
    await store.deleteRun('r');
    expect(await db.count('checkpoints')).toBe(0);
    expect(await db.count('checkpointData')).toBe(0);
    db.close();
    await store.close();
  });

  it('upgrades a schema-1 database: checkpoint bytes move out of their manifests and still load', async () => {
    const name = dbName();
    const store2 = await IdbRunStore.open({ name, locks: new MemoryLocks() });
    const w = await store2.createRun('r', newRun());
    await drive(w, 2, [2]);
    await w.close();
    const expected = await (await store2.readRun('r')).loadCheckpoint(2);
    await store2.close();
    // Rewrite it as schema 1 wrote it: six stores, the bytes inside the checkpoint record.
    const db2 = await openTabzeroDb(name);
    const V1_STORES = ['runs', 'steps', 'samples', 'evals', 'tasks', 'checkpoints'] as const;
    const rows = Object.fromEntries(await Promise.all(V1_STORES.map(async (n) => [n, await db2.getAll(n)])));
    const data = await db2.getAll('checkpointData');
    db2.close();
    rows.checkpoints = rows.checkpoints.map((c: { step: number }) => {
      const d = data.find((x) => x.step === c.step)!;
      return { ...c, weights: d.weights, state: d.state };
    });
    await new Promise<void>((resolve, reject) => {
      const del = indexedDB.deleteDatabase(name);
      del.onsuccess = () => resolve();
      del.onerror = () => reject(del.error);
    });
    await new Promise<void>((resolve, reject) => {
      const open = indexedDB.open(name, 1);
      open.onupgradeneeded = () => {
        const keys = { runs: 'id', steps: ['runId', 'step'], samples: ['runId', 'step', 'i'] };
        const more = { evals: ['runId', 'step', 'name'], tasks: ['runId', 'bucket', 'id'] };
        const paths: Record<string, string | string[]> = { ...keys, ...more, checkpoints: ['runId', 'step'] };
        for (const n of V1_STORES) open.result.createObjectStore(n, { keyPath: paths[n] });
        for (const n of V1_STORES) for (const r of rows[n]) open.transaction!.objectStore(n).put(r);
      };
      open.onsuccess = () => {
        open.result.close();
        resolve();
      };
      open.onerror = () => reject(open.error);
    });

    const store = await IdbRunStore.open({ name, locks: new MemoryLocks() });
    const loaded = await (await store.readRun('r')).loadCheckpoint(2);
    expect(loaded.info).toEqual(expected.info);
    expect(loaded.tensors.map((t) => [...t.data])).toEqual(expected.tensors.map((t) => [...t.data]));
    const db = await openTabzeroDb(name);
    expect(Object.keys((await db.get('checkpoints', ['r', 2]))!).sort()).toEqual([
      'manifest',
      'runId',
      'step',
    ]);
    db.close();
    await store.close();
  });

  it.each(['samples', 'tasks', 'runs', 'steps'])(
    'a QuotaExceededError on a %s put raises StoreFullError and the whole step is rolled back',
    async (target) => {
      const store = await IdbRunStore.open({ name: dbName(), locks: new MemoryLocks() });
      const w = await store.createRun('r', newRun());
      const s2 = await drive(w, 2, [2]);
      const before = await everything(await store.readRun('r'));
      failPutsInto(target);
      const err = await w.commitStep(stepCommit(s2)).catch((e) => e);
      expect(err).toBeInstanceOf(StoreFullError);
      expect(err.message).toMatch(
        /storage for TabZero is full \(QuotaExceededError\) while saving step 3.*unchanged at step 2/,
      );
      IDBObjectStore.prototype.put = originalPut;
      expect(await everything(await store.readRun('r'))).toEqual(before);
      // The same writer carries on once there is room again.
      const s3 = await drive(w, 3);
      expect((await everything(await store.readRun('r'))).state).toEqual(s3);
      await w.close();
      await store.close();
    },
  );

  it('a full disk that aborts the transaction (Chromium: the requests fail with AbortError, the transaction with QuotaExceededError) raises StoreFullError', async () => {
    const store = await IdbRunStore.open({ name: dbName(), locks: new MemoryLocks() });
    const w = await store.createRun('r', newRun());
    const s2 = await drive(w, 2, [2]);
    const before = await everything(await store.readRun('r'));
    IDBObjectStore.prototype.put = function (
      this: IDBObjectStore,
      ...args: Parameters<IDBObjectStore['put']>
    ) {
      const req = originalPut.apply(this, args);
      if (this.name === 'steps') {
        const tx = this.transaction;
        Object.defineProperty(tx, 'error', {
          value: new DOMException('The quota has been exceeded.', 'QuotaExceededError'),
        });
        tx.abort();
      }
      return req;
    };
    const err = await w.commitStep(stepCommit(s2)).catch((e) => e);
    expect(err).toBeInstanceOf(StoreFullError);
    expect(err.message).toMatch(/storage for TabZero is full \(QuotaExceededError\) while saving step 3/);
    IDBObjectStore.prototype.put = originalPut;
    expect(await everything(await store.readRun('r'))).toEqual(before);
    await w.close();
    await store.close();
  });

  it('a full quota while checkpointing keeps the previous checkpoints', async () => {
    const store = await IdbRunStore.open({ name: dbName(), locks: new MemoryLocks() });
    const w = await store.createRun('r', newRun());
    await drive(w, 3, [1, 2]);
    failPutsInto('checkpoints');
    await expect(w.saveCheckpoint({ step: 3, tensors: tensors(3), reason: 'hidden' })).rejects.toBeInstanceOf(
      StoreFullError,
    );
    IDBObjectStore.prototype.put = originalPut;
    expect((await w.checkpoints()).map((c) => c.step)).toEqual([1, 2]);
    expect((await w.resume()).step).toBe(2);
    await w.close();
    await store.close();
  });

  it('any other failure inside a commit also leaves nothing behind (and is not called "full")', async () => {
    const store = await IdbRunStore.open({ name: dbName(), locks: new MemoryLocks() });
    const w = await store.createRun('r', newRun());
    const s3 = await drive(w, 3);
    const before = await everything(await store.readRun('r'));
    IDBObjectStore.prototype.delete = function () {
      throw new DOMException('disk I/O error', 'UnknownError');
    };
    const err = await w.commitStep(stepCommit(s3)).catch((e) => e);
    expect(err).not.toBeInstanceOf(StoreFullError);
    expect(err.name).toBe('UnknownError');
    IDBObjectStore.prototype.delete = originalDelete;
    expect(await everything(await store.readRun('r'))).toEqual(before);
    await w.close();
    await store.close();
  });

  it('writes only the buffer changes of a step (new entries and evictions)', async () => {
    const store = await IdbRunStore.open({ name: dbName(), locks: new MemoryLocks() });
    const w = await store.createRun('r', newRun());
    const s3 = await drive(w, 3);
    const puts: string[] = [];
    const deletes: unknown[] = [];
    IDBObjectStore.prototype.put = function (
      this: IDBObjectStore,
      ...args: Parameters<IDBObjectStore['put']>
    ) {
      if (this.name === 'tasks') puts.push((args[0] as { id: string }).id);
      return originalPut.apply(this, args);
    };
    IDBObjectStore.prototype.delete = function (this: IDBObjectStore, key: IDBValidKey | IDBKeyRange) {
      if (this.name === 'tasks') deletes.push(key);
      return originalDelete.call(this, key);
    };
    const c = stepCommit(s3);
    await w.commitStep(c);
    expect(puts.length).toBe(6); // two new entries per buffer
    expect(deletes.length).toBe(6); // each full buffer evicted its two oldest non-seed entries
    expect(await w.buffers()).toEqual(c.state.buffers);
    await w.close();
    await store.close();
  });

  it('refuses a run record written by a newer TabZero', async () => {
    const name = dbName();
    const store = await IdbRunStore.open({ name, locks: new MemoryLocks() });
    await (await store.createRun('r', newRun())).close();
    const db = await openTabzeroDb(name);
    await db.put('runs', { ...(await db.get('runs', 'r'))!, formatVersion: 3 });
    db.close();
    const err = await store.readRun('r').catch((e) => e);
    expect(err).toBeInstanceOf(FormatVersionError);
    expect(err.message).toMatch(
      /run "r": written by a newer TabZero \(tabzero-run format version 3; this TabZero reads up to 1\)/,
    );
    await expect(store.openRun('r')).rejects.toBeInstanceOf(FormatVersionError);
    expect(await store.listRuns()).toEqual([]);
    await store.close();
  });

  it('refuses a damaged run record, saying what is wrong and what to do', async () => {
    const name = dbName();
    const store = await IdbRunStore.open({ name, locks: new MemoryLocks() });
    await (await store.createRun('r', newRun())).close();
    const db = await openTabzeroDb(name);
    const { model: _m, ...rest } = (await db.get('runs', 'r'))!;
    await db.put('runs', { ...rest, step: '2' } as never);
    db.close();
    for (const open of [() => store.readRun('r'), () => store.openRun('r')]) {
      const err = await open().catch((e) => e);
      expect(err).toBeInstanceOf(CorruptDataError);
      expect(err.message).toBe(
        'run "r" is damaged (model, step missing or of the wrong type in its record), so TabZero cannot open it: ' +
          'delete it, or import it again from an archive of it.',
      );
    }
    expect(await store.listRuns()).toEqual([]);
    await store.close();
  });

  it('refuses a database upgraded by a newer TabZero', async () => {
    const name = dbName();
    await new Promise<void>((resolve, reject) => {
      const req = indexedDB.open(name, DB_SCHEMA_VERSION + 1);
      req.onsuccess = () => {
        req.result.close();
        resolve();
      };
      req.onerror = () => reject(req.error);
    });
    const err = await IdbRunStore.open({ name, locks: new MemoryLocks() }).catch((e) => e);
    expect(err).toBeInstanceOf(FormatVersionError);
    expect(err.message).toMatch(
      new RegExp(`upgraded by a newer TabZero.*schema version ${DB_SCHEMA_VERSION}.*Reload`),
    );
  });

  it('says so when Web Locks are missing instead of writing unguarded', async () => {
    const store = await IdbRunStore.open({ name: dbName(), locks: null });
    await expect(store.createRun('r', newRun())).rejects.toThrow(
      /Web Locks \(navigator.locks\) are not available/,
    );
    await store.close();
  });
});

describe('quota errors and storage reports', () => {
  it('recognises QuotaExceededError in the shapes browsers use', () => {
    expect(isQuotaError(new DOMException('x', 'QuotaExceededError'))).toBe(true);
    expect(isQuotaError({ name: 'Error', code: 22 })).toBe(true);
    expect(isQuotaError(new Error('wrapped', { cause: new DOMException('x', 'QuotaExceededError') }))).toBe(
      true,
    );
    expect(isQuotaError(new DOMException('x', 'AbortError'))).toBe(false);
    expect(isQuotaError(null)).toBe(false);
  });

  it('asks for persistent storage once and reports usage and quota', async () => {
    let persisted = false;
    let asked = 0;
    const storage = {
      persisted: async () => persisted,
      persist: async () => {
        asked++;
        persisted = true;
        return true;
      },
      estimate: async () => ({ usage: 412e6, quota: 2.1e9 }),
    };
    expect(await requestPersistentStorage(storage)).toBe(true);
    expect(await requestPersistentStorage(storage)).toBe(true);
    expect(asked).toBe(1);
    const report = await storageReport(storage);
    expect(report).toEqual({ usage: 412e6, quota: 2.1e9, persisted: true });
    expect(describeStorage(report)).toBe('412 MB of 2.1 GB used (persistent)');
    expect(await requestPersistentStorage(null)).toBe(false);
    expect(await storageReport(null)).toEqual({ usage: null, quota: null, persisted: null });
    expect(describeStorage({ usage: null, quota: null, persisted: null })).toBe('storage use unknown');
  });
});
