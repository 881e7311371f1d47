// Node host for the verifier worker (CLI and tests): a worker_threads Worker that registers tsx and
// then imports the worker module, so the TypeScript sources run as they are. Node-only; the browser
// uses webWorkerFactory from verifier.ts.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { VerifierMessage } from './verifier-protocol.ts';
import type { VerifierWorkerFactory } from './verifier.ts';

const DEFAULT_WORKER = new URL('../../workers/verifier.worker.ts', import.meta.url);

export function nodeWorkerFactory(workerModule: URL = DEFAULT_WORKER): VerifierWorkerFactory {
  // The ESM entry of tsx's API (its `import` export condition); createRequire alone would pick the CJS one.
  const tsxRoot = dirname(createRequire(import.meta.url).resolve('tsx/package.json'));
  const tsxApi = pathToFileURL(join(tsxRoot, 'dist/esm/api/index.mjs')).href;
  // Bootstrap source is ours (two fixed imports), not model text.
  const bootstrap =
    `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); ` +
    `return import(${JSON.stringify(workerModule.href)}); });`;
  return () => {
    const worker = new Worker(bootstrap, { eval: true });
    worker.unref();
    return {
      post: (req) => worker.postMessage(req),
      onResponse: (cb) => worker.on('message', (msg: VerifierMessage) => cb(msg)),
      onFailure: (cb) => {
        worker.on('error', cb);
        worker.on('exit', (code) => {
          if (code !== 0) cb(new Error(`verifier worker exited with code ${code}`));
        });
      },
      terminate: () => void worker.terminate(),
    };
  };
}
