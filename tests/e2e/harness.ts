// The e2e harness (TESTING.md): build the app once, serve it with vite preview on 127.0.0.1 and a free
// port, and drive Debian's Chromium with WebGPU through playwright-core.
import { cpSync, existsSync, mkdtempSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build, preview, type PreviewServer } from 'vite';
import { chromium, type BrowserContext } from 'playwright-core';

export type GpuMode = 'core' | 'compat';

// core: the same semantics as users' Chrome (SwiftShader Vulkan, ~0.4 GFLOP/s, no f16).
// compat: GL compatibility mode on llvmpipe (~3 GFLOP/s, no f16/subgroups), for the long flows.
const GPU_FLAGS: Record<GpuMode, string[]> = {
  core: ['--enable-unsafe-webgpu'],
  compat: [
    '--enable-unsafe-webgpu',
    '--ignore-gpu-blocklist',
    '--use-angle=gl-egl',
    '--use-webgpu-adapter=opengles',
    '--force-webgpu-compat',
  ],
};

const CLOSED_NETWORK_FLAGS = [
  '--no-sandbox',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
];

export const ARTIFACTS = join(process.cwd(), 'test-output', 'e2e');

let built: Promise<void> | null = null;

/** Builds dist/ once per test process. */
export function buildApp(): Promise<void> {
  built ??= build({ logLevel: 'warn' }).then(() => undefined);
  return built;
}

export async function servePreview(): Promise<{ server: PreviewServer; url: string }> {
  await buildApp();
  const server = await preview({
    logLevel: 'warn',
    preview: { host: '127.0.0.1', port: 0, strictPort: false },
  });
  const address = server.httpServer.address();
  if (!address || typeof address === 'string') throw new Error('vite preview did not bind a TCP port');
  return { server, url: `http://127.0.0.1:${address.port}/` };
}

export interface Browser {
  context: BrowserContext;
  userDataDir: string;
  close(): Promise<void>;
}

/**
 * Chromium's GPU caches in a profile (compiled shaders and pipelines: Dawn's WGSL → GLSL and the GL
 * program binaries). On llvmpipe a fresh profile spends most of a smoke run's first minute compiling
 * (the tiny model's first two smoke steps: 94 s cold, 53 s from copied caches, under the same load), and
 * a killed browser never writes them back. So every profile starts from the caches that the last cleanly
 * closed browser of its GPU mode left in test-output/e2e/gpu-cache-MODE: caches only, never storage.
 */
const GPU_CACHE_DIRS = [
  'GPUPersistentCache',
  'Default/GPUCache',
  'Default/DawnWebGPUCache',
  'Default/DawnGraphiteCache',
];
const sharedGpuCache = (mode: GpuMode) => join(process.cwd(), 'test-output', 'e2e', `gpu-cache-${mode}`);

function copyGpuCache(from: string, to: string): void {
  for (const d of GPU_CACHE_DIRS) {
    if (existsSync(join(from, d))) cpSync(join(from, d), join(to, d), { recursive: true, force: true });
  }
}

/** Replaces the shared caches of `mode` with the profile's (copied aside first, then renamed in place). */
function saveGpuCache(mode: GpuMode, profile: string): void {
  if (!existsSync(join(profile, 'Default', 'GPUCache'))) return;
  const shared = sharedGpuCache(mode);
  const next = `${shared}.${process.pid}.${Date.now()}`;
  copyGpuCache(profile, next);
  rmSync(shared, { recursive: true, force: true });
  renameSync(next, shared);
}

/**
 * A fresh profile unless `userDataDir` is given (reuse it to test persistence across reloads); with
 * `gpuCache: false` the profile neither starts from nor leaves the shared GPU caches.
 */
export async function launchBrowser(
  mode: GpuMode,
  userDataDir?: string,
  { gpuCache = true }: { gpuCache?: boolean } = {},
): Promise<Browser> {
  const dir = userDataDir ?? mkdtempSync(join(tmpdir(), 'tabzero-e2e-'));
  if (gpuCache && existsSync(sharedGpuCache(mode))) copyGpuCache(sharedGpuCache(mode), dir);
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: process.env.CHROME_PATH ?? '/usr/bin/chromium',
    headless: true,
    args: [...CLOSED_NETWORK_FLAGS, ...GPU_FLAGS[mode]],
    env: { ...process.env, EGL_PLATFORM: 'surfaceless' },
  });
  mkdirSync(ARTIFACTS, { recursive: true });
  return {
    context,
    userDataDir: dir,
    async close() {
      await context.close();
      if (gpuCache) saveGpuCache(mode, dir);
      if (!userDataDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
