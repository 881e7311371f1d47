// One interface for every place a model folder can come from: the Hugging Face hub (hub-client.ts),
// files the user picked or dropped (filesSource), a folder in Node (node-folder.ts), or memory
// (memoryFolder: the browser's built-in tiny model). Browser-safe.

import { blobSource, bytesSource, type ByteSource } from './byte-source.ts';
import type { ByteSink } from './safetensors-write.ts';

export interface ModelSource {
  /** For messages, e.g. `hub Qwen/Qwen2-0.5B-Instruct@main` or `folder /models/tiny`. */
  readonly description: string;
  /** Identity recorded with runs and exports (DESIGN.md): the hub repo, or `local/<folder name>`. */
  readonly repo: string;
  /** Hub commit (or the requested revision when the commit is unknown); `local` for local files. */
  readonly revision: string;
  /** File names in the folder (flat, e.g. `config.json`). */
  list(): Promise<string[]>;
  /** Opens a file; throws an error naming the file and the source when it is missing. */
  open(file: string): Promise<ByteSource>;
  /**
   * SHA-256 (hex) of a file when the source has a cheaper way than hashing in JS: verified during
   * download (hub), native hashing (Node folder). Null or absent: loadModelFolder hashes in JS.
   */
  knownSha256?(file: string): Promise<string | null>;
}

/** Where a generator writes a model folder. */
export interface FolderSink {
  writeFile(name: string, data: Uint8Array | string): Promise<void>;
  createFile(name: string): Promise<ByteSink>;
}

export class MissingFileError extends Error {
  override name = 'MissingFileError';
}

function missing(description: string, file: string): never {
  throw new MissingFileError(`${description}: no file "${file}"`);
}

/** Strips a leading folder from a relative path (`mymodel/config.json` → `config.json`). */
function baseName(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? path : path.slice(i + 1);
}

/**
 * Files chosen with a file picker (`<input type=file webkitdirectory multiple>`) or dropped as a folder.
 * Files are matched by base name; the folder name (from webkitRelativePath) becomes the identity.
 */
export function filesSource(files: readonly File[], folderName?: string): ModelSource {
  const byName = new Map<string, File>();
  for (const f of files) byName.set(baseName(f.webkitRelativePath || f.name), f);
  const firstPath = files.find((f) => f.webkitRelativePath)?.webkitRelativePath;
  const name = folderName ?? (firstPath ? firstPath.split('/')[0] : 'selected-files');
  const description = `local files (${name})`;
  return {
    description,
    repo: `local/${name}`,
    revision: 'local',
    list: async () => [...byName.keys()].sort(),
    open: async (file) => {
      const f = byName.get(file);
      if (!f) missing(description, file);
      return blobSource(f, file);
    },
  };
}

/** An in-memory model folder: a FolderSink to generate into and a ModelSource to load from. */
export interface MemoryFolder extends ModelSource, FolderSink {
  readonly files: Map<string, Uint8Array>;
}

export function memoryFolder(name = 'memory'): MemoryFolder {
  const files = new Map<string, Uint8Array>();
  const description = `in-memory folder (${name})`;
  return {
    files,
    description,
    repo: `local/${name}`,
    revision: 'local',
    list: async () => [...files.keys()].sort(),
    open: async (file) => {
      const bytes = files.get(file);
      if (!bytes) missing(description, file);
      return bytesSource(bytes, file);
    },
    writeFile: async (file, data) => {
      files.set(file, typeof data === 'string' ? new TextEncoder().encode(data) : data.slice());
    },
    createFile: async (file) => {
      const chunks: Uint8Array[] = [];
      return {
        write: async (chunk) => void chunks.push(chunk.slice()),
        close: async () => {
          const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
          let pos = 0;
          for (const c of chunks) {
            out.set(c, pos);
            pos += c.byteLength;
          }
          files.set(file, out);
        },
      };
    },
  };
}
