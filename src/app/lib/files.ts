// Local model files: what a dropped folder contains, and whether it is a complete model folder.

export const REQUIRED_FILES = ['config.json', 'tokenizer.json'] as const;

export function checkModelFiles(files: readonly File[]): { ok: true } | { ok: false; problem: string } {
  if (!files.length) return { ok: false, problem: 'Choose a model folder or its files.' };
  const names = new Set(files.map((f) => f.name));
  const missing = REQUIRED_FILES.filter((n) => !names.has(n));
  if (!files.some((f) => f.name.endsWith('.safetensors'))) missing.push('model.safetensors' as never);
  if (missing.length) {
    return {
      ok: false,
      problem: `Missing ${missing.join(', ')}: a model folder has config.json, model.safetensors, tokenizer.json and tokenizer_config.json.`,
    };
  }
  return { ok: true };
}

// FileSystemEntry traversal: the only way to read a dropped folder's files in every Chromium.
function readEntries(reader: FileSystemDirectoryReader): Promise<FileSystemEntry[]> {
  return new Promise((resolve, reject) => reader.readEntries(resolve, reject));
}

function entryFile(entry: FileSystemFileEntry): Promise<File> {
  return new Promise((resolve, reject) => entry.file(resolve, reject));
}

async function walk(entry: FileSystemEntry, out: File[]): Promise<void> {
  if (entry.isFile) {
    out.push(await entryFile(entry as FileSystemFileEntry));
  } else if (entry.isDirectory) {
    const reader = (entry as FileSystemDirectoryEntry).createReader();
    // readEntries returns at most 100 entries per call; an empty batch means done.
    for (let batch = await readEntries(reader); batch.length; batch = await readEntries(reader)) {
      for (const child of batch) await walk(child, out);
    }
  }
}

/** The files of a drop: dropped files as they are, dropped folders flattened (one level of model folder). */
export async function filesFromDrop(data: DataTransfer): Promise<File[]> {
  const entries = [...data.items]
    .map((item) => (item.kind === 'file' ? item.webkitGetAsEntry() : null))
    .filter((e): e is FileSystemEntry => e !== null);
  if (!entries.length) return [...data.files];
  const out: File[] = [];
  for (const entry of entries) await walk(entry, out);
  return out;
}
