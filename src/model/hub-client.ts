// Hugging Face hub client: downloads `{endpoint}/{repo}/resolve/{revision}/{file}` into a ByteStore with
// byte progress (bytes, rate, ETA), resumes an interrupted download with HTTP Range, hashes SHA-256
// incrementally while bytes arrive, and verifies size and hash (the hub's x-linked-size /
// x-linked-etag, i.e. the LFS oid) before marking a file complete. A complete file is served from the
// store without touching the network, so a second visit works offline. Browser-safe.

import { readChunks } from './byte-source.ts';
import type { ByteStore, StoredFileMeta } from './byte-store.ts';
import type { ModelSource } from './model-source.ts';
import { MissingFileError } from './model-source.ts';
import { Sha256 } from './sha256.ts';

export const DEFAULT_HUB_ENDPOINT = 'https://huggingface.co';

export interface HubFile {
  /** e.g. `https://huggingface.co` or a classroom mirror `http://192.168.1.10:8080`. */
  endpoint: string;
  repo: string;
  /** Branch, tag or commit (e.g. `main`). */
  revision: string;
  file: string;
}

export interface DownloadProgress {
  file: string;
  /** `verifying` re-hashes bytes kept from an interrupted download before resuming. */
  phase: 'verifying' | 'downloading' | 'done';
  bytes: number;
  /** Null when the server did not say. */
  total: number | null;
  /** Bytes per second over the last few seconds. */
  bytesPerSecond: number;
  /** Seconds left at the current rate, or null when unknown. */
  etaSeconds: number | null;
}

export interface DownloadOptions {
  fetch?: typeof fetch;
  onProgress?: (p: DownloadProgress) => void;
  signal?: AbortSignal;
  /** Minimum interval between progress events in ms (the last event of a file is always sent). */
  progressIntervalMs?: number;
  /** Clock in ms (tests). */
  now?: () => number;
}

export interface FileDownloadOptions extends DownloadOptions {
  /** Expected SHA-256 when the caller knows it (e.g. the LFS oid from the tree API). */
  expectedSha256?: string | null;
}

export interface DownloadResult {
  size: number;
  /** SHA-256 hex of the stored file (verified against the server's when it gave one). */
  sha256: string;
  verified: boolean;
  /** True when the complete file was already in the store (no network used). */
  fromStore: boolean;
  commit: string | null;
}

export class HubError extends Error {
  override name = 'HubError';
  constructor(
    message: string,
    readonly status?: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

const DEFAULT_PROGRESS_INTERVAL_MS = 100;
/** The transfer rate is averaged over this window, so the ETA follows changes in speed. */
const RATE_WINDOW_MS = 5000;
const SHA256_HEX = /^[0-9a-f]{64}$/;

export function resolveUrl(f: HubFile): string {
  const path = f.file.split('/').map(encodeURIComponent).join('/');
  return `${f.endpoint.replace(/\/+$/, '')}/${f.repo}/resolve/${encodeURIComponent(f.revision)}/${path}`;
}

export function storeKey(f: HubFile): string {
  return `${f.repo}/${f.revision}/${f.file}`;
}

function unquoteEtag(v: string | null): string | null {
  if (!v) return null;
  return v.replace(/^W\//, '').replace(/^"|"$/g, '');
}

interface RemoteInfo {
  size: number | null;
  sha256: string | null;
  etag: string | null;
  commit: string | null;
}

function remoteInfo(res: Response): RemoteInfo {
  const linkedEtag = unquoteEtag(res.headers.get('x-linked-etag'));
  const etag = unquoteEtag(res.headers.get('etag'));
  // A compressed response's Content-Length is not the file's size; only trust it for identity encoding.
  const encoded = (res.headers.get('content-encoding') ?? 'identity') !== 'identity';
  const sizeHeader = res.headers.get('x-linked-size') ?? (encoded ? null : res.headers.get('content-length'));
  const size = sizeHeader !== null && /^\d+$/.test(sizeHeader) ? Number(sizeHeader) : null;
  // LFS files: the linked etag is the file's SHA-256. Small git files have a git-sha1 etag: no hash check.
  const sha = [linkedEtag, etag].find((e): e is string => e !== null && SHA256_HEX.test(e)) ?? null;
  return { size, sha256: sha, etag: linkedEtag ?? etag, commit: res.headers.get('x-repo-commit') };
}

function httpError(f: HubFile, url: string, res: Response): HubError {
  if (res.status === 404) {
    return new HubError(
      `${f.file} not found in ${f.repo} at revision ${f.revision} (HTTP 404 from ${url}); check the repo name, revision and endpoint`,
      404,
    );
  }
  if (res.status === 401 || res.status === 403) {
    return new HubError(
      `${url}: HTTP ${res.status} — the repo may be private or gated (TabZero sends no token)`,
      res.status,
    );
  }
  return new HubError(`${url}: HTTP ${res.status} ${res.statusText}`.trim(), res.status);
}

class ProgressMeter {
  private samples: { t: number; bytes: number }[] = [];
  private lastEmit = -Infinity;

  constructor(
    private readonly file: string,
    private readonly opts: DownloadOptions,
  ) {}

  report(phase: DownloadProgress['phase'], bytes: number, total: number | null, force = false): void {
    if (!this.opts.onProgress) return;
    const now = (this.opts.now ?? (() => performance.now()))();
    this.samples.push({ t: now, bytes });
    while (this.samples.length > 2 && now - this.samples[1].t > RATE_WINDOW_MS) this.samples.shift();
    if (!force && now - this.lastEmit < (this.opts.progressIntervalMs ?? DEFAULT_PROGRESS_INTERVAL_MS))
      return;
    this.lastEmit = now;
    const first = this.samples[0];
    const dt = (now - first.t) / 1000;
    const bytesPerSecond = dt > 0 ? (bytes - first.bytes) / dt : 0;
    const etaSeconds =
      total !== null && bytesPerSecond > 0 ? Math.max(0, total - bytes) / bytesPerSecond : null;
    this.opts.onProgress({ file: this.file, phase, bytes, total, bytesPerSecond, etaSeconds });
  }

  reset(): void {
    this.samples = [];
  }
}

/** Hashes the bytes of a partial download that are already stored, so hashing can continue. */
async function rehashStored(
  store: ByteStore,
  key: string,
  hash: Sha256,
  meter: ProgressMeter,
  total: number | null,
): Promise<void> {
  const src = await store.open(key);
  try {
    for await (const chunk of readChunks(src)) {
      hash.update(chunk);
      meter.report('verifying', hash.length, total);
    }
  } finally {
    await src.close?.();
  }
}

/** fetch, with network failures (offline, refused, DNS) turned into a message that names the URL. */
async function fetchOrExplain(doFetch: typeof fetch, url: string, init: RequestInit): Promise<Response> {
  try {
    return await doFetch(url, init);
  } catch (err) {
    if (init.signal?.aborted) throw err;
    const why = err instanceof Error ? err.message : String(err);
    throw new HubError(`cannot reach ${url} (${why}); offline, or the endpoint is wrong?`, undefined, {
      cause: err,
    });
  }
}

function contentRangeStart(res: Response): number | null {
  const m = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
  return m ? Number(m[1]) : null;
}

/**
 * Downloads one file into `store` (or finds it there, complete and verified). Throws HubError with a
 * clear message on HTTP errors, size or hash mismatch; an interrupted transfer keeps its bytes and
 * the next call resumes from them.
 */
export async function downloadFile(
  f: HubFile,
  store: ByteStore,
  opts: FileDownloadOptions = {},
): Promise<DownloadResult> {
  const doFetch = opts.fetch ?? globalThis.fetch.bind(globalThis);
  const key = storeKey(f);
  const url = resolveUrl(f);
  const meter = new ProgressMeter(f.file, opts);

  const stored = await store.readMeta(key);
  const storedSize = await store.size(key);
  if (
    stored?.complete &&
    storedSize !== null &&
    stored.sha256 !== null &&
    (stored.size === null || stored.size === storedSize)
  ) {
    meter.report('done', storedSize, storedSize, true);
    return {
      size: storedSize,
      sha256: stored.sha256,
      verified: true,
      fromStore: true,
      commit: stored.commit,
    };
  }

  const head = await fetchOrExplain(doFetch, url, { method: 'HEAD', signal: opts.signal });
  if (!head.ok) throw httpError(f, url, head);
  const remote = remoteInfo(head);
  remote.sha256 ??= opts.expectedSha256 ?? null;

  // Keep stored bytes only if they belong to the same upstream file.
  let have = storedSize ?? 0;
  if (
    have > 0 &&
    (!stored ||
      stored.complete ||
      (remote.etag !== null && stored.etag !== remote.etag) ||
      (remote.size !== null && have > remote.size))
  ) {
    have = 0;
  }
  const partialMeta: StoredFileMeta = {
    complete: false,
    size: remote.size,
    sha256: remote.sha256,
    etag: remote.etag,
    commit: remote.commit,
    url,
  };
  await store.writeMeta(key, partialMeta);

  const hash = new Sha256();
  if (have > 0) {
    // Re-hash what we kept: an incremental hash's state cannot be stored portably, re-reading local bytes is fast.
    const sink = await store.openAppend(key, have); // truncates anything beyond `have`
    await sink.close();
    await rehashStored(store, key, hash, meter, remote.size);
  }

  if (remote.size === null || have < remote.size) {
    const res = await fetchOrExplain(doFetch, url, {
      headers: have > 0 ? { Range: `bytes=${have}-` } : {},
      signal: opts.signal,
    });
    // A 200 to a Range request means the server ignored it: start over (with a fresh hash).
    if (res.status === 200) have = 0;
    if (!res.ok) throw httpError(f, url, res);
    if (res.status === 206 && contentRangeStart(res) !== have) {
      throw new HubError(
        `${url}: server answered Range bytes=${have}- with ${res.headers.get('content-range')}`,
      );
    }
    const hasher = res.status === 200 ? new Sha256() : hash;
    const sink = await store.openAppend(key, have);
    meter.reset();
    let bytes = have;
    const total = remote.size;
    try {
      if (!res.body) throw new HubError(`${url}: empty response body`);
      const reader = res.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        if (total !== null && bytes + value.byteLength > total) {
          throw new HubError(`${f.file}: server sent more than the ${total} bytes it announced`);
        }
        await sink.write(value);
        hasher.update(value);
        bytes += value.byteLength;
        meter.report('downloading', bytes, total);
      }
    } finally {
      // Close, not abort: bytes received before an error are kept for the next attempt.
      await sink.close();
    }
    return finish(f, store, key, partialMeta, hasher, bytes, meter);
  }
  return finish(f, store, key, partialMeta, hash, have, meter);
}

async function finish(
  f: HubFile,
  store: ByteStore,
  key: string,
  meta: StoredFileMeta,
  hash: Sha256,
  bytes: number,
  meter: ProgressMeter,
): Promise<DownloadResult> {
  const sha256 = hash.hexDigest();
  if (meta.size !== null && bytes !== meta.size) {
    throw new HubError(`${f.file}: download ended at ${bytes} of ${meta.size} bytes; run again to resume`);
  }
  if (meta.sha256 !== null && sha256 !== meta.sha256) {
    await store.remove(key);
    throw new HubError(
      `${f.file}: SHA-256 mismatch (expected ${meta.sha256}, got ${sha256}); the corrupt file was deleted`,
    );
  }
  await store.writeMeta(key, { ...meta, complete: true, size: bytes, sha256 });
  meter.report('done', bytes, bytes, true);
  return { size: bytes, sha256, verified: meta.sha256 !== null, fromStore: false, commit: meta.commit };
}

/** The files TabZero needs from a model repo; generation_config.json may be absent. */
export const MODEL_FILES = [
  'config.json',
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'model.safetensors',
] as const;
const OPTIONAL_FILES = new Set<string>(['generation_config.json']);

/**
 * LFS oids (= SHA-256) of a revision's files from `{endpoint}/api/models/{repo}/tree/{revision}`. Used when
 * the resolve response hides x-linked-etag (a browser sees only the CDN's headers after the redirect).
 * Best effort: any failure yields an empty map, and size is still verified.
 */
export async function fetchLfsOids(
  base: Omit<HubFile, 'file'>,
  opts: DownloadOptions = {},
): Promise<Map<string, string>> {
  const doFetch = opts.fetch ?? globalThis.fetch.bind(globalThis);
  const url = `${base.endpoint.replace(/\/+$/, '')}/api/models/${base.repo}/tree/${encodeURIComponent(base.revision)}`;
  const out = new Map<string, string>();
  try {
    const res = await fetchOrExplain(doFetch, url, { signal: opts.signal });
    if (!res.ok) return out;
    const entries = (await res.json()) as { path?: unknown; lfs?: { oid?: unknown } }[];
    for (const e of Array.isArray(entries) ? entries : []) {
      if (typeof e.path === 'string' && typeof e.lfs?.oid === 'string' && SHA256_HEX.test(e.lfs.oid))
        out.set(e.path, e.lfs.oid);
    }
  } catch (err) {
    if (opts.signal?.aborted) throw err;
  }
  return out;
}

export interface HubModelOptions extends DownloadOptions {
  endpoint?: string;
  repo: string;
  revision?: string;
  store: ByteStore;
}

/** Downloads (or finds in the store) a model folder from the hub and returns it as a ModelSource. */
export async function downloadModel(opts: HubModelOptions): Promise<ModelSource> {
  const base = {
    endpoint: opts.endpoint ?? DEFAULT_HUB_ENDPOINT,
    repo: opts.repo,
    revision: opts.revision ?? 'main',
  };
  const results = new Map<string, DownloadResult>();
  // Offline second visit: when every file is complete in the store, do not touch the network at all.
  const stored = await Promise.all(
    MODEL_FILES.map((file) => opts.store.readMeta(storeKey({ ...base, file }))),
  );
  const allStored = MODEL_FILES.every((file, i) => stored[i]?.complete || OPTIONAL_FILES.has(file));
  const oids = allStored ? new Map<string, string>() : await fetchLfsOids(base, opts);
  for (const file of MODEL_FILES) {
    try {
      results.set(
        file,
        await downloadFile({ ...base, file }, opts.store, {
          ...opts,
          expectedSha256: oids.get(file) ?? null,
        }),
      );
    } catch (err) {
      if (err instanceof HubError && err.status === 404 && OPTIONAL_FILES.has(file)) continue;
      throw err;
    }
  }
  const commit = results.get('model.safetensors')?.commit ?? null;
  const description = `hub ${base.repo}@${base.revision}`;
  return {
    description,
    repo: base.repo,
    revision: commit ?? base.revision,
    list: async () => [...results.keys()].sort(),
    open: async (file) => {
      if (!results.has(file)) throw new MissingFileError(`${description}: no file "${file}"`);
      return opts.store.open(storeKey({ ...base, file }));
    },
    knownSha256: async (file) => results.get(file)?.sha256 ?? null,
  };
}

/**
 * Bytes a model folder download will take (HEAD on each file; what is already complete in `store`
 * counts as 0), so the UI can show the size before starting. Null when the endpoint cannot be reached.
 */
export async function hubDownloadSize(
  base: Omit<HubFile, 'file'>,
  store: ByteStore | null,
  opts: Pick<DownloadOptions, 'fetch' | 'signal'> = {},
): Promise<{ total: number; remaining: number } | null> {
  const doFetch = opts.fetch ?? globalThis.fetch.bind(globalThis);
  let total = 0;
  let remaining = 0;
  try {
    for (const file of MODEL_FILES) {
      const res = await doFetch(resolveUrl({ ...base, file }), { method: 'HEAD', signal: opts.signal });
      if (!res.ok) {
        if (res.status === 404 && OPTIONAL_FILES.has(file)) continue;
        return null;
      }
      const size = remoteInfo(res).size ?? 0;
      total += size;
      const stored = store ? await store.readMeta(storeKey({ ...base, file })) : null;
      if (!stored?.complete)
        remaining += size - ((store && (await store.size(storeKey({ ...base, file })))) ?? 0);
    }
  } catch {
    return null;
  }
  return { total, remaining };
}
