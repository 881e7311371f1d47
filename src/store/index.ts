// The store's browser-safe API (IndexedDB backend, archive, seed sets, storage report). Node-only
// parts (run folders, lock files, archive files) are in node.ts, so the browser bundle never sees node:fs.
export * from './types.ts';
export * from './errors.ts';
export {
  ARCHIVE_FORMAT_VERSION,
  BUFFER_FORMAT_VERSION,
  CHECKPOINT_FORMAT_VERSION,
  RUN_FORMAT_VERSION,
  SEED_SET_FORMAT_VERSION,
} from './format.ts';
export { IdbRunStore, type IdbRunStoreOptions } from './idb-store.ts';
export { DB_NAME, DB_SCHEMA_VERSION } from './idb-schema.ts';
export {
  ARCHIVE_EXTENSION,
  exportRunArchive,
  importRunArchive,
  readRunArchive,
  runArchiveBlob,
  writeRunArchive,
} from './archive.ts';
export { encodeSeedSet, parseSeedSet } from './seed-set.ts';
export { ModelMismatchError, checkSameModel, describeModel } from './identity.ts';
export { describeStorage, requestPersistentStorage, storageReport } from './storage-quota.ts';
export { runLockName, type LockManagerLike } from './web-lock.ts';
