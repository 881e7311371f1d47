// The store's Node API: run folders (the CLI's --out RUN_DIR) and archive files, plus everything
// browser-safe. Never import this from browser code.
export * from './index.ts';
export { NodeRunStore, type NodeRunStoreOptions } from './node-run-store.ts';
export { importRunArchiveFile, readRunArchiveFile, writeRunArchiveFile } from './node-archive.ts';
export { LOCK_FILE } from './node-lock.ts';
export type { FaultHook, FsOp } from './node-fs.ts';
