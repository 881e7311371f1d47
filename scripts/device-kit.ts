// `npm run device-kit`: one folder, device-kit/ (ignored by git), that runs the engine's benches on a lent
// GPU machine — Linux with a Vulkan driver, no Node, no network, at most 64 MiB copied to it (issue 17).
// It holds tabzero-device-kit.tar.xz (≤ KIT_LIMIT_BYTES): the CLI bundled into one JS file with esbuild,
// the `webgpu` package's Dawn binary, this machine's Node binary and the Vulkan loader, and run.sh; and
// run-device-kit.sh, which unpacks it to a temporary folder and runs it, printing one JSON object:
//   bash device-kit/run-device-kit.sh > result.json
// (TABZERO_KIT_SMOKE=1 runs the same on a tiny generated model, to try the kit on lavapipe.)
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import { TABZERO_VERSION } from '../src/version.ts';

const OUT = 'device-kit';
const STAGE = join(OUT, 'kit');
const ARCHIVE = join(OUT, 'tabzero-device-kit.tar.xz');
/** The kit must fit the device machine's 64 MiB copy with room for the working tree. */
const KIT_LIMIT_BYTES = 45 * 2 ** 20;
const VULKAN_LOADER = '/usr/lib/x86_64-linux-gnu/libvulkan.so.1';

function fail(message: string): never {
  process.stderr.write(`device-kit: ${message}\n`);
  process.exit(1);
}

/**
 * The CLI as one ES module in `dir` (tabzero.mjs, main.mjs to run it) with the `webgpu` package beside it.
 * webgpu stays a package (its index.js loads dawn.node from its dist/); onnxruntime is imported only by
 * `bench --onnx` and the export checks, which the kit does not run.
 */
export async function bundleCli(dir: string): Promise<void> {
  await build({
    entryPoints: ['cli/main.ts'],
    outfile: join(dir, 'tabzero.mjs'),
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external: ['webgpu', 'onnxruntime-node', 'onnxruntime-web', 'onnxruntime-web/*', 'onnxruntime-common'],
    // Bundled CommonJS packages call require(); give the module one.
    banner: {
      js: "import { createRequire as __kitRequire } from 'node:module'; const require = __kitRequire(import.meta.url);",
    },
    logLevel: 'warning',
  });
  // cli/main.ts runs itself only when it is the entry by name; here main.mjs is the entry.
  writeFileSync(
    join(dir, 'main.mjs'),
    "import { main } from './tabzero.mjs';\nprocess.exit(await main(process.argv.slice(2)));\n",
  );
  const webgpu = join(dir, 'node_modules', 'webgpu');
  mkdirSync(join(webgpu, 'dist', 'linux-x64'), { recursive: true });
  for (const f of ['index.js', 'package.json', 'LICENSE.md'])
    copyFileSync(join('node_modules/webgpu', f), join(webgpu, f));
  copyFileSync('node_modules/webgpu/dist/linux-x64/dawn.node', join(webgpu, 'dist/linux-x64/dawn.node'));
}

async function buildKit(): Promise<void> {
  if (process.platform !== 'linux' || process.arch !== 'x64')
    fail(`the kit is for Linux x64 GPU machines; this is ${process.platform}-${process.arch}`);
  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(join(STAGE, 'bin'), { recursive: true });
  mkdirSync(join(STAGE, 'lib'), { recursive: true });
  await bundleCli(STAGE);
  copyFileSync(process.execPath, join(STAGE, 'bin', 'node'));
  chmodSync(join(STAGE, 'bin', 'node'), 0o755);
  copyFileSync(realpathSync(VULKAN_LOADER), join(STAGE, 'lib', 'libvulkan.so.1'));
  copyFileSync('scripts/device-kit/run.sh', join(STAGE, 'run.sh'));
  chmodSync(join(STAGE, 'run.sh'), 0o755);

  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    // not a git checkout
  }
  writeFileSync(
    join(STAGE, 'kit.json'),
    JSON.stringify({
      tabzero: TABZERO_VERSION,
      commit,
      node: process.version,
      builtAt: new Date().toISOString(),
    }) + '\n',
  );

  execFileSync('tar', ['-C', OUT, '-cJf', ARCHIVE, 'kit'], { env: { ...process.env, XZ_OPT: '-9 -T2' } });
  rmSync(STAGE, { recursive: true, force: true });
  writeFileSync(join(OUT, 'run-device-kit.sh'), readFileSync('scripts/device-kit/run-device-kit.sh', 'utf8'));
  chmodSync(join(OUT, 'run-device-kit.sh'), 0o755);
  const bytes = statSync(ARCHIVE).size;
  if (bytes > KIT_LIMIT_BYTES)
    fail(`the kit is ${(bytes / 2 ** 20).toFixed(1)} MB, over its ${KIT_LIMIT_BYTES / 2 ** 20} MB limit`);
  process.stdout.write(
    `device kit: ${ARCHIVE} ${(bytes / 2 ** 20).toFixed(1)} MB (limit ${KIT_LIMIT_BYTES / 2 ** 20} MB); ` +
      `run it with: bash ${join(OUT, 'run-device-kit.sh')} > result.json\n`,
  );
}

if (process.argv[1] && /device-kit\.ts$/.test(process.argv[1])) await buildKit();
