// Node only: serves a model folder in the hub's URL layout, `/{repo}/resolve/{revision}/{path}` with
// HTTP Range, HEAD, the hub's x-linked-size / x-linked-etag (SHA-256) headers and CORS, plus the tree
// API's LFS oids — so a classroom downloads the 988 MB once from the teacher's machine
// (`tabzero serve-model DIR`) and the app's hub client needs nothing special.

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import {
  createServer,
  type IncomingMessage,
  type RequestListener,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';

export interface ModelServerOptions {
  dir: string;
  port?: number;
  host?: string;
  /** Serve only this repo name (e.g. `Qwen/Qwen2-0.5B-Instruct`); any repo path when absent. */
  repo?: string;
  /** Called for each request (logging, tests). */
  onRequest?: (info: { method: string; path: string; range: string | null; status: number }) => void;
  /**
   * PEM certificate and key: serve HTTPS. Needed when the app itself is served over HTTPS (the LAN
   * mode), because an HTTPS page may not fetch from a plain-HTTP mirror (mixed content).
   */
  tls?: { cert: string; key: string };
}

export interface ModelServer {
  server: Server;
  /** e.g. `http://127.0.0.1:8080`: the endpoint to give the hub client. */
  url: string;
  close(): Promise<void>;
}

const EXPOSED_HEADERS =
  'Accept-Ranges, Content-Length, Content-Range, ETag, X-Linked-Etag, X-Linked-Size, X-Repo-Commit';
const LOCAL_COMMIT = 'local';

interface FileHash {
  size: number;
  mtimeMs: number;
  sha256: Promise<string>;
}

function hashFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  return pipeline(createReadStream(path), hash).then(() => hash.digest('hex'));
}

/** Parses a single `bytes=` range; null for none, 'invalid' when unsatisfiable. */
export function parseRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | null | 'invalid' {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return 'invalid';
  let start: number;
  let end: number;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return 'invalid';
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start >= size || start > end) return 'invalid';
  return { start, end };
}

export async function startModelServer(opts: ModelServerOptions): Promise<ModelServer> {
  const root = resolve(opts.dir);
  const rootInfo = await stat(root).catch(() => null);
  if (!rootInfo?.isDirectory()) throw new Error(`serve-model: ${root} is not a directory`);
  const hashes = new Map<string, FileHash>();

  async function fileInfo(name: string): Promise<{ path: string; size: number; sha256: string } | null> {
    // A path inside the folder (transformers.js folders keep the weights in onnx/): no empty, hidden
    // (`.`, `..`, dotfiles) or backslash segments, so nothing outside `root` is reachable.
    const parts = name.split('/');
    if (parts.some((p) => p === '' || p.startsWith('.') || p.includes('\\'))) return null;
    const path = join(root, ...parts);
    const info = await stat(path).catch(() => null);
    if (!info?.isFile()) return null;
    let cached = hashes.get(name);
    if (!cached || cached.size !== info.size || cached.mtimeMs !== info.mtimeMs) {
      cached = { size: info.size, mtimeMs: info.mtimeMs, sha256: hashFile(path) };
      hashes.set(name, cached);
    }
    return { path, size: info.size, sha256: await cached.sha256 };
  }

  function send(res: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
    res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<number> {
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader('Access-Control-Expose-Headers', EXPOSED_HEADERS);
    if (req.method === 'OPTIONS') {
      res.writeHead(204, {
        'Access-Control-Allow-Methods': 'GET, HEAD, OPTIONS',
        'Access-Control-Allow-Headers': 'Range',
      });
      res.end();
      return 204;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, 'method not allowed\n');
      return 405;
    }
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const tree = /^\/api\/models\/(.+)\/tree\/([^/]+)\/?$/.exec(path);
    if (tree && (!opts.repo || tree[1] === opts.repo)) {
      const names = (await readdir(root, { withFileTypes: true }))
        .filter((e) => e.isFile() && !e.name.startsWith('.'))
        .map((e) => e.name);
      const entries = [];
      for (const name of names.sort()) {
        const info = (await fileInfo(name))!;
        entries.push({
          type: 'file',
          path: name,
          size: info.size,
          oid: info.sha256,
          lfs: { oid: info.sha256, size: info.size },
        });
      }
      send(res, 200, JSON.stringify(entries), 'application/json');
      return 200;
    }
    const m = /^\/(.+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    if (!m || (opts.repo && m[1] !== opts.repo)) {
      send(res, 404, `Not found: ${path} (this server serves /{repo}/resolve/{revision}/{file})\n`);
      return 404;
    }
    const info = await fileInfo(m[3]);
    if (!info) {
      send(res, 404, `Entry not found: ${m[3]}\n`);
      return 404;
    }
    const headers: Record<string, string | number> = {
      'Accept-Ranges': 'bytes',
      'Content-Type': 'application/octet-stream',
      ETag: `"${info.sha256}"`,
      'X-Linked-Etag': `"${info.sha256}"`,
      'X-Linked-Size': info.size,
      'X-Repo-Commit': LOCAL_COMMIT,
    };
    const range = parseRange(req.headers.range, info.size);
    if (range === 'invalid') {
      res.writeHead(416, { ...headers, 'Content-Range': `bytes */${info.size}`, 'Content-Length': 0 });
      res.end();
      return 416;
    }
    const { start, end } = range ?? { start: 0, end: info.size - 1 };
    const status = range ? 206 : 200;
    res.writeHead(status, {
      ...headers,
      'Content-Length': info.size === 0 ? 0 : end - start + 1,
      ...(range ? { 'Content-Range': `bytes ${start}-${end}/${info.size}` } : {}),
    });
    if (req.method === 'HEAD' || info.size === 0) {
      res.end();
      return status;
    }
    await pipeline(createReadStream(info.path, { start, end }), res).catch(() => undefined); // client went away
    return status;
  }

  const listener: RequestListener = (req, res) => {
    handle(req, res).then(
      (status) =>
        opts.onRequest?.({
          method: req.method ?? '',
          path: req.url ?? '',
          range: req.headers.range ?? null,
          status,
        }),
      (err: unknown) => {
        if (!res.headersSent)
          send(res, 500, `server error: ${err instanceof Error ? err.message : String(err)}\n`);
        else res.destroy();
      },
    );
  };
  const server: Server = opts.tls ? createHttpsServer(opts.tls, listener) : createServer(listener);
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => ok());
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    server,
    url: `${opts.tls ? 'https' : 'http'}://${host}:${addr.port}`,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}
