// The e2e harness (TESTING.md): build the app once, serve it with vite preview on 127.0.0.1 and a free
// port, and drive Debian's Chromium with WebGPU through playwright-core.
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build, preview, type PreviewServer } from 'vite';
import { chromium, type Browser as PwBrowser, type BrowserContext } from 'playwright-core';

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

/** A fresh profile unless `userDataDir` is given (reuse it to test persistence across reloads). */
export async function launchBrowser(mode: GpuMode, userDataDir?: string): Promise<Browser> {
  const dir = userDataDir ?? mkdtempSync(join(tmpdir(), 'tabzero-e2e-'));
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
      if (!userDataDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A browser without a persistent profile, for the tests that need a browser-level DevTools session
 * (`Browser.crashGpuProcess`): persistent contexts have none.
 */
export async function launchEphemeralBrowser(
  mode: GpuMode,
): Promise<{ browser: PwBrowser; context: BrowserContext }> {
  const browser = await chromium.launch({
    executablePath: process.env.CHROME_PATH ?? '/usr/bin/chromium',
    headless: true,
    args: [...CLOSED_NETWORK_FLAGS, ...GPU_FLAGS[mode]],
    env: { ...process.env, EGL_PLATFORM: 'surfaceless' },
  });
  mkdirSync(ARTIFACTS, { recursive: true });
  return { browser, context: await browser.newContext() };
}
