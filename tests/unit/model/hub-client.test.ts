import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getCertificate } from '@vitejs/plugin-basic-ssl';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryByteStore } from '../../../src/model/byte-store.ts';
import {
  downloadFile,
  downloadModel,
  HubError,
  storeKey,
  type DownloadProgress,
} from '../../../src/model/hub-client.ts';
import { loadModelFolder } from '../../../src/model/model-folder.ts';
import { NodeFsByteStore } from '../../../src/model/node-fs-store.ts';
import { nodeFolderSink } from '../../../src/model/node-folder.ts';
import { parseRange, startModelServer, type ModelServer } from '../../../src/model/node-model-server.ts';
import { generateTinyModel } from '../../../src/model/tiny-model.ts';
import { byteTokenizerFiles } from '../../../src/model/tokenizer-files.ts';

const REPO = 'tabzero/tiny-test';
let dir: string;
let server: ModelServer;
let weightsSha: string;
let weightsSize: number;
const requests: { method: string; path: string; range: string | null; status: number }[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tabzero-hub-'));
  await generateTinyModel(await nodeFolderSink(join(dir, 'model')), {
    seed: 5,
    tokenizerFiles: byteTokenizerFiles(),
    tokenizerKind: 'bytes',
    dtype: 'BF16',
    hidden: 64,
    layers: 4,
    intermediate: 256,
  });
  const weights = await readFile(join(dir, 'model', 'model.safetensors'));
  weightsSha = createHash('sha256').update(weights).digest('hex');
  weightsSize = weights.byteLength;
  server = await startModelServer({
    dir: join(dir, 'model'),
    repo: REPO,
    onRequest: (r) => requests.push(r),
  });
});

afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

const file = (name: string) => ({ endpoint: server.url, repo: REPO, revision: 'main', file: name });

/** A fetch whose response body fails after `limit` bytes, like a dropped Wi-Fi connection. */
function droppingFetch(limit: number): typeof fetch {
  return async (input, init) => {
    const res = await fetch(input, init);
    if (!res.body || init?.method === 'HEAD') return res;
    let sent = 0;
    const reader = res.body.getReader();
    const body = new ReadableStream<Uint8Array>({
      async pull(ctrl) {
        if (sent === limit) {
          // Error on the pull after the last delivered bytes: error() would discard still-queued chunks.
          await reader.cancel();
          ctrl.error(new TypeError('network connection lost'));
          return;
        }
        const { done, value } = await reader.read();
        if (done) return ctrl.close();
        if (sent + value.byteLength > limit) {
          ctrl.enqueue(value.subarray(0, limit - sent));
          sent = limit;
          return;
        }
        sent += value.byteLength;
        ctrl.enqueue(value);
      },
    });
    return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
  };
}

describe('serve-model server', () => {
  it('parses byte ranges', () => {
    expect(parseRange(undefined, 10)).toBeNull();
    expect(parseRange('bytes=2-5', 10)).toEqual({ start: 2, end: 5 });
    expect(parseRange('bytes=7-', 10)).toEqual({ start: 7, end: 9 });
    expect(parseRange('bytes=-3', 10)).toEqual({ start: 7, end: 9 });
    expect(parseRange('bytes=4-100', 10)).toEqual({ start: 4, end: 9 });
    expect(parseRange('bytes=10-', 10)).toBe('invalid');
    expect(parseRange('bytes=5-2', 10)).toBe('invalid');
    expect(parseRange('items=1-2', 10)).toBe('invalid');
  });

  it('serves ranges, HEAD with the hub headers, the tree API, and 404/416', async () => {
    const url = `${server.url}/${REPO}/resolve/main/model.safetensors`;
    const head = await fetch(url, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('x-linked-etag')).toBe(`"${weightsSha}"`);
    expect(Number(head.headers.get('x-linked-size'))).toBe(weightsSize);
    const part = await fetch(url, { headers: { Range: 'bytes=8-15' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 8-15/${weightsSize}`);
    const whole = await readFile(join(dir, 'model', 'model.safetensors'));
    expect(new Uint8Array(await part.arrayBuffer())).toEqual(new Uint8Array(whole.subarray(8, 16)));
    expect((await fetch(url, { headers: { Range: `bytes=${weightsSize}-` } })).status).toBe(416);
    expect((await fetch(`${server.url}/${REPO}/resolve/main/nope.bin`)).status).toBe(404);
    expect((await fetch(`${server.url}/other/repo/resolve/main/config.json`)).status).toBe(404);
    expect((await fetch(`${server.url}/${REPO}/resolve/main/..%2Fmodel%2Fconfig.json`)).status).toBe(404);
    const tree = (await (await fetch(`${server.url}/api/models/${REPO}/tree/main`)).json()) as {
      path: string;
      lfs: { oid: string };
    }[];
    expect(tree.find((e) => e.path === 'model.safetensors')?.lfs.oid).toBe(weightsSha);
  });
});

describe('serve-model with subfolders (transformers.js keeps its weights in onnx/)', () => {
  it('serves files below the folder and nothing outside it', async () => {
    const root = mkdtempSync(join(tmpdir(), 'tabzero-serve-sub-'));
    mkdirSync(join(root, 'served', 'onnx'), { recursive: true });
    writeFileSync(join(root, 'served', 'onnx', 'model.onnx'), 'graph');
    writeFileSync(join(root, 'served', '.hidden'), 'no');
    writeFileSync(join(root, 'secret.txt'), 'no');
    const s = await startModelServer({ dir: join(root, 'served'), port: 0, repo: REPO });
    try {
      const base = `${s.url}/${REPO}/resolve/main`;
      const ok = await fetch(`${base}/onnx/model.onnx`);
      expect(ok.status).toBe(200);
      expect(await ok.text()).toBe('graph');
      for (const bad of ['../secret.txt', 'onnx/../../secret.txt', '.hidden', 'onnx//model.onnx', 'onnx/.']) {
        expect((await fetch(`${base}/${encodeURIComponent(bad)}`)).status, bad).toBe(404);
      }
      expect((await fetch(`${base}/onnx`)).status).toBe(404);
    } finally {
      await s.close();
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('serve-model over HTTPS', () => {
  it('serves the same layout with a PEM certificate (for apps served over HTTPS)', async () => {
    const pem = await getCertificate(join(dir, 'cert'));
    const tls = await startModelServer({ dir: join(dir, 'model'), tls: { cert: pem, key: pem } });
    try {
      expect(tls.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const headers = await new Promise<Record<string, unknown>>((ok, fail) => {
        // The certificate is self-signed (a browser asks the user once); skip verification here.
        const req = request(
          `${tls.url}/${REPO}/resolve/main/model.safetensors`,
          { method: 'HEAD', rejectUnauthorized: false },
          (res) => {
            res.resume();
            ok({ status: res.statusCode, etag: res.headers['x-linked-etag'] });
          },
        );
        req.on('error', fail);
        req.end();
      });
      expect(headers).toEqual({ status: 200, etag: `"${weightsSha}"` });
    } finally {
      await tls.close();
    }
  });
});

describe('hub client', () => {
  it('downloads a model folder with progress, verifies it, and loads it offline the second time', async () => {
    const store = new MemoryByteStore();
    const progress: DownloadProgress[] = [];
    const source = await downloadModel({
      endpoint: server.url,
      repo: REPO,
      store,
      onProgress: (p) => progress.push(p),
      progressIntervalMs: 0,
    });
    const model = await loadModelFolder(source);
    expect(model.identity).toEqual({ repo: REPO, revision: 'local', sha256: weightsSha });
    expect(model.config.numHiddenLayers).toBe(4);
    const weightEvents = progress.filter((p) => p.file === 'model.safetensors');
    expect(weightEvents.at(-1)).toMatchObject({ phase: 'done', bytes: weightsSize, total: weightsSize });
    const mid = weightEvents.filter((p) => p.phase === 'downloading');
    expect(mid.length).toBeGreaterThan(1);
    for (let i = 1; i < mid.length; i++) expect(mid[i].bytes).toBeGreaterThan(mid[i - 1].bytes);
    expect(mid.at(-1)!.bytesPerSecond).toBeGreaterThan(0);
    expect(mid.every((p) => p.total === weightsSize)).toBe(true);
    expect(mid.at(-1)!.etaSeconds).not.toBeNull();

    const offline: typeof fetch = async () => {
      throw new TypeError('offline');
    };
    const again = await downloadModel({ endpoint: server.url, repo: REPO, store, fetch: offline });
    expect((await loadModelFolder(again)).identity.sha256).toBe(weightsSha);
  });

  it('resumes an interrupted download with a Range request (on disk)', async () => {
    const store = new NodeFsByteStore(join(dir, 'cache'));
    const cut = Math.floor(weightsSize / 3);
    await expect(
      downloadFile(file('model.safetensors'), store, { fetch: droppingFetch(cut) }),
    ).rejects.toThrow(/network connection lost/);
    expect(await store.size(storeKey(file('model.safetensors')))).toBe(cut);

    requests.length = 0;
    const phases = new Set<string>();
    const result = await downloadFile(file('model.safetensors'), store, {
      onProgress: (p) => phases.add(p.phase),
      progressIntervalMs: 0,
    });
    expect(result).toMatchObject({ size: weightsSize, sha256: weightsSha, verified: true, fromStore: false });
    expect(requests.find((r) => r.method === 'GET')).toMatchObject({ range: `bytes=${cut}-`, status: 206 });
    expect(phases.has('verifying')).toBe(true);
    const stored = await readFile(join(dir, 'cache', REPO, 'main', 'model.safetensors'));
    expect(createHash('sha256').update(stored).digest('hex')).toBe(weightsSha);
  });

  it('starts over when the server ignores Range', async () => {
    const store = new MemoryByteStore();
    await expect(
      downloadFile(file('model.safetensors'), store, { fetch: droppingFetch(1000) }),
    ).rejects.toThrow();
    const noRange: typeof fetch = (input, init) => fetch(input, { ...init, headers: {} });
    const result = await downloadFile(file('model.safetensors'), store, { fetch: noRange });
    expect(result).toMatchObject({ size: weightsSize, sha256: weightsSha, verified: true });
    expect(store.files.get(storeKey(file('model.safetensors')))!.byteLength).toBe(weightsSize);
  });

  it('keeps the bytes of a download the user cancelled and resumes them', async () => {
    const store = new MemoryByteStore();
    const controller = new AbortController();
    const key = storeKey(file('model.safetensors'));
    const cancelled = downloadFile(file('model.safetensors'), store, {
      signal: controller.signal,
      progressIntervalMs: 0,
      onProgress: (p) => {
        if (p.phase === 'downloading' && p.bytes > 0) controller.abort();
      },
    });
    await expect(cancelled).rejects.toThrow(/abort/i);
    const kept = store.files.get(key)!.byteLength;
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThan(weightsSize);
    expect((await store.readMeta(key))?.complete).toBe(false);
    const result = await downloadFile(file('model.safetensors'), store);
    expect(result).toMatchObject({ sha256: weightsSha, verified: true });
  });

  it('takes the expected hash from the tree API when the resolve headers hide it (browser after a redirect)', async () => {
    const hidingEtags: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      const headers = new Headers(res.headers);
      headers.delete('x-linked-etag');
      headers.delete('etag');
      const corrupt = String(input).endsWith('model.safetensors') && init?.method !== 'HEAD';
      const body = corrupt
        ? new Uint8Array(await res.arrayBuffer()).map((b, i) => (i === 100 ? b ^ 1 : b))
        : res.body;
      return new Response(init?.method === 'HEAD' ? null : body, { status: res.status, headers });
    };
    await expect(
      downloadModel({ endpoint: server.url, repo: REPO, store: new MemoryByteStore(), fetch: hidingEtags }),
    ).rejects.toThrow(new RegExp(`model\\.safetensors: SHA-256 mismatch \\(expected ${weightsSha}`));
  });

  it('explains an unreachable endpoint', async () => {
    const offline: typeof fetch = async () => {
      throw new TypeError('fetch failed');
    };
    await expect(
      downloadFile(file('config.json'), new MemoryByteStore(), { fetch: offline }),
    ).rejects.toThrow(
      /cannot reach http:\/\/127\.0\.0\.1:\d+\/tabzero\/tiny-test\/resolve\/main\/config\.json \(fetch failed\); offline, or the endpoint is wrong\?/,
    );
  });

  it('reports a missing file clearly (404)', async () => {
    const err = await downloadFile(file('pytorch_model.bin'), new MemoryByteStore()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HubError);
    expect((err as HubError).message).toMatch(
      /pytorch_model\.bin not found in tabzero\/tiny-test at revision main \(HTTP 404 from http:\/\/127\.0\.0\.1:\d+\/.*\); check the repo name/,
    );
    await expect(
      downloadModel({ endpoint: server.url, repo: 'nobody/nothing', store: new MemoryByteStore() }),
    ).rejects.toThrow(/config\.json not found in nobody\/nothing/);
  });

  it('rejects and deletes a corrupted download', async () => {
    const store = new MemoryByteStore();
    const corrupting: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      if (init?.method === 'HEAD') return res;
      const bytes = new Uint8Array(await res.arrayBuffer());
      bytes[bytes.length - 1] ^= 1;
      return new Response(bytes, { status: res.status, headers: res.headers });
    };
    await expect(downloadFile(file('model.safetensors'), store, { fetch: corrupting })).rejects.toThrow(
      /SHA-256 mismatch \(expected [0-9a-f]{64}, got [0-9a-f]{64}\)/,
    );
    expect(await store.size(storeKey(file('model.safetensors')))).toBeNull();
  });
});
