// The verifier as the runner sees it, and the supervisor that runs it in a worker: a wall-clock limit per
// request, terminate + restart on overrun, and a `timeout` verdict for the job that overran. The worker
// itself is created by an injected factory (browser Web Worker or Node worker_threads).
import {
  handleVerifierRequest,
  isReadyMessage,
  type VerifierMessage,
  toArithLimits,
  runJob,
  type VerifierJob,
  type VerifierRequest,
  type VerifierVerdict,
  type WireLimits,
} from './verifier-protocol.ts';

export interface Verifier {
  verify(jobs: VerifierJob[]): Promise<VerifierVerdict[]>;
  close(): void;
}

/** A running worker, whatever hosts it. */
export interface VerifierEndpoint {
  post(req: VerifierRequest): void;
  onResponse(cb: (msg: VerifierMessage) => void): void;
  onFailure(cb: (err: unknown) => void): void;
  terminate(): void;
}

export type VerifierWorkerFactory = () => VerifierEndpoint;

/** Jobs per message: amortises the message round trip; an overrunning batch is retried job by job. */
const JOBS_PER_REQUEST = 64;

/** Runs the verifier on the calling thread: for tests and tools that need no guard. */
export class InlineVerifier implements Verifier {
  constructor(private readonly limits: WireLimits) {}
  async verify(jobs: VerifierJob[]): Promise<VerifierVerdict[]> {
    const limits = toArithLimits(this.limits);
    return jobs.map((j) => runJob(j, limits));
  }
  close(): void {}
}

type Outcome =
  { kind: 'ok'; verdicts: VerifierVerdict[] } | { kind: 'timeout' } | { kind: 'crashed'; error: unknown };

/**
 * How long a fresh worker may take to load its module and say it is ready. Start-up is kept out of the
 * per-request guard, which would otherwise fire spuriously on a busy machine (spec 4.1).
 */
const WORKER_START_TIMEOUT_MS = 60_000;

interface RunningWorker {
  ep: VerifierEndpoint;
  /** true once the worker posted VERIFIER_READY; false if it failed or never came up. */
  ready: Promise<boolean>;
}

export class WorkerVerifier implements Verifier {
  private running: RunningWorker | null = null;
  private nextId = 1;
  private pending: { id: number; settle: (o: Outcome) => void } | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  /** Workers terminated and replaced so far (timeouts and crashes). */
  restarts = 0;

  constructor(
    private readonly factory: VerifierWorkerFactory,
    private readonly limits: WireLimits,
    private readonly timeoutMs: number,
  ) {}

  private start(): RunningWorker {
    if (this.running) return this.running;
    const ep = this.factory();
    let markReady: (ok: boolean) => void = () => {};
    const ready = new Promise<boolean>((resolve) => (markReady = resolve));
    const startTimer = setTimeout(() => markReady(false), WORKER_START_TIMEOUT_MS);
    // Messages from a worker that was already replaced are ignored.
    ep.onResponse((msg) => {
      if (this.running?.ep !== ep) return;
      if (isReadyMessage(msg)) {
        clearTimeout(startTimer);
        markReady(true);
      } else if (this.pending?.id === msg.id) {
        this.pending.settle({ kind: 'ok', verdicts: msg.verdicts });
      }
    });
    ep.onFailure((error) => {
      if (this.running?.ep !== ep) return;
      clearTimeout(startTimer);
      markReady(false);
      this.running = null;
      this.pending?.settle({ kind: 'crashed', error });
    });
    this.running = { ep, ready };
    return this.running;
  }

  private restart(): void {
    const old = this.running;
    this.running = null;
    old?.ep.terminate();
    this.restarts++;
  }

  private async send(jobs: VerifierJob[]): Promise<Outcome> {
    const worker = this.start();
    if (!(await worker.ready)) return { kind: 'crashed', error: 'verifier worker did not start' };
    return new Promise<Outcome>((resolve) => {
      const id = this.nextId++;
      const timer = setTimeout(() => settle({ kind: 'timeout' }), this.timeoutMs);
      const settle = (o: Outcome) => {
        if (this.pending?.id !== id) return;
        clearTimeout(timer);
        this.pending = null;
        resolve(o);
      };
      this.pending = { id, settle };
      try {
        worker.ep.post({ id, jobs, limits: this.limits });
      } catch (error) {
        settle({ kind: 'crashed', error });
      }
    });
  }

  private async runBatch(jobs: VerifierJob[]): Promise<VerifierVerdict[]> {
    const outcome = await this.send(jobs);
    if (outcome.kind === 'ok') return outcome.verdicts;
    this.restart();
    if (jobs.length === 1) {
      const msg =
        outcome.kind === 'timeout'
          ? `verifier exceeded ${this.timeoutMs} ms`
          : `verifier worker crashed: ${String(outcome.error)}`;
      return [{ ok: false, error: outcome.kind, message: msg }];
    }
    // Find the culprit: every job gets its own guarded request, so only the overrunning one times out.
    const out: VerifierVerdict[] = [];
    for (const job of jobs) out.push(...(await this.runBatch([job])));
    return out;
  }

  verify(jobs: VerifierJob[]): Promise<VerifierVerdict[]> {
    const run = async () => {
      const out: VerifierVerdict[] = [];
      for (let k = 0; k < jobs.length; k += JOBS_PER_REQUEST) {
        out.push(...(await this.runBatch(jobs.slice(k, k + JOBS_PER_REQUEST))));
      }
      return out;
    };
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  close(): void {
    const old = this.running;
    this.running = null;
    old?.ep.terminate();
  }
}

/** Browser: wraps a module Web Worker running workers/verifier.worker.ts as a verifier endpoint. */
export function webWorkerEndpoint(worker: Worker): VerifierEndpoint {
  return {
    post: (req) => worker.postMessage(req),
    onResponse: (cb) => worker.addEventListener('message', (e: MessageEvent<VerifierMessage>) => cb(e.data)),
    onFailure: (cb) => worker.addEventListener('error', (e) => cb(e.message)),
    terminate: () => worker.terminate(),
  };
}

/**
 * Browser: a factory from a worker constructor. Bundlers only find the worker's module when the
 * caller writes `new Worker(new URL('…/verifier.worker.ts', import.meta.url), { type: 'module' })`
 * literally, so the caller passes that expression as a function.
 */
export function webWorkerFactory(create: () => Worker): VerifierWorkerFactory {
  return () => webWorkerEndpoint(create());
}

export { handleVerifierRequest };

/** The verifier's limits from a run config. */
export function wireLimits(
  c: Pick<WireLimits, 'maxSourceChars' | 'maxBinaryOps' | 'maxParenDepth' | 'maxMagnitude' | 'maxArity'>,
): WireLimits {
  return {
    maxSourceChars: c.maxSourceChars,
    maxBinaryOps: c.maxBinaryOps,
    maxParenDepth: c.maxParenDepth,
    maxMagnitude: c.maxMagnitude,
    maxArity: c.maxArity,
  };
}

/** A worker-backed verifier configured from a run config (limits + verifierTimeoutMs). */
export function createWorkerVerifier(
  factory: VerifierWorkerFactory,
  c: Pick<WireLimits, 'maxSourceChars' | 'maxBinaryOps' | 'maxParenDepth' | 'maxMagnitude' | 'maxArity'> & {
    verifierTimeoutMs: number;
  },
): WorkerVerifier {
  return new WorkerVerifier(factory, wireLimits(c), c.verifierTimeoutMs);
}
