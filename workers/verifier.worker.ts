// Thin host of the AZ-Arith verifier (DESIGN.md): answers VerifierRequests off the trainer's thread.
// Runs as a browser module Web Worker or as a Node worker_threads worker; the supervisor in
// src/selfplay/verifier.ts enforces the wall-clock limit and restarts it on overrun.
import {
  handleVerifierRequest,
  VERIFIER_READY,
  type VerifierRequest,
} from '../src/selfplay/verifier-protocol.ts';

interface NodePort {
  on(event: 'message', cb: (msg: VerifierRequest) => void): void;
  postMessage(msg: unknown): void;
}

const inWebWorker = typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !== 'undefined';

if (inWebWorker) {
  // Nothing here loads or connects; a violation would say the policy or the verifier changed.
  globalThis.addEventListener('securitypolicyviolation', (e) =>
    console.error(
      `Content Security Policy violation: ${(e as SecurityPolicyViolationEvent).effectiveDirective}`,
    ),
  );
  globalThis.addEventListener('message', (e: Event) => {
    globalThis.postMessage(handleVerifierRequest((e as MessageEvent<VerifierRequest>).data));
  });
  globalThis.postMessage(VERIFIER_READY);
} else {
  // Node: getBuiltinModule keeps bundlers from trying to resolve node:worker_threads for the browser.
  const nodeProcess = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const wt = nodeProcess?.getBuiltinModule?.('node:worker_threads') as
    { parentPort: NodePort | null } | undefined;
  const port = wt?.parentPort;
  if (port) {
    port.on('message', (req) => port.postMessage(handleVerifierRequest(req)));
    port.postMessage(VERIFIER_READY);
  }
}
