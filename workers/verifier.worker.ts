// Thin host of the AZ-Arith verifier (DESIGN.md): answers VerifierRequests off the trainer's thread.
// Runs as a browser module Web Worker or as a Node worker_threads worker; the supervisor in
// src/selfplay/verifier.ts enforces the wall-clock limit and restarts it on overrun.
import { handleVerifierRequest, type VerifierRequest } from '../src/selfplay/verifier-protocol.ts';

const inWebWorker = typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !== 'undefined';

if (inWebWorker) {
  globalThis.addEventListener('message', (e: Event) => {
    const req = (e as MessageEvent<VerifierRequest>).data;
    globalThis.postMessage(handleVerifierRequest(req));
  });
} else {
  const { parentPort } = await import('node:worker_threads');
  parentPort?.on('message', (req: VerifierRequest) => parentPort.postMessage(handleVerifierRequest(req)));
}
