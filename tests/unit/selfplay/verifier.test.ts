// The verifier supervisor on real Node worker_threads: answers, timeout + restart on a job that overruns.
import { afterEach, describe, expect, it } from 'vitest';
import { nodeWorkerFactory } from '../../../src/selfplay/verifier-node.ts';
import { InlineVerifier, WorkerVerifier } from '../../../src/selfplay/verifier.ts';
import type { WireLimits } from '../../../src/selfplay/verifier-protocol.ts';

const LIMITS: WireLimits = {
  maxSourceChars: 120,
  maxBinaryOps: 10,
  maxParenDepth: 6,
  maxMagnitude: 1e9,
  maxArity: 2,
};
const open: WorkerVerifier[] = [];
afterEach(() => open.splice(0).forEach((v) => v.close()));

describe('verifier worker', () => {
  it('evaluates in a worker thread exactly like the inline verifier', async () => {
    const v = new WorkerVerifier(nodeWorkerFactory(), LIMITS, 5000);
    open.push(v);
    const jobs = [
      {
        program: '(x, y) => (x*3+y)%7',
        inputs: [
          ['4', '-9'],
          ['1', '2'],
        ],
      },
      { program: 'x // 0', inputs: [['3']] },
      { program: 'Math.floor(x)', inputs: [] },
    ];
    const got = await v.verify(jobs);
    expect(got).toEqual(await new InlineVerifier(LIMITS).verify(jobs));
    expect(got[0]).toMatchObject({ ok: true, canonical: 'f(x, y) = (x * 3 + y) % 7', arity: 2 });
    if (got[0].ok) expect(got[0].results[0]).toEqual({ ok: true, value: '3', closed: '(4 * 3 + (-9)) % 7' });
    if (got[1].ok) expect(got[1].results[0]).toEqual({ ok: false, error: 'div0' });
    expect(got[2]).toMatchObject({ ok: false, error: 'unsafe' });
  });

  it('times out an overrunning job, restarts the worker, and keeps the other verdicts', async () => {
    const slow = nodeWorkerFactory(new URL('./fixtures/slow-verifier.worker.ts', import.meta.url));
    const v = new WorkerVerifier(slow, LIMITS, 600);
    open.push(v);
    // Start the first worker before the timed part (start-up is outside the guard anyway).
    await v.verify([{ program: 'x', inputs: [['1']] }]);
    const t0 = Date.now();
    const got = await v.verify([
      { program: 'x + 1', inputs: [['1']] },
      { program: 'SPIN', inputs: [] },
      { program: 'x * 2', inputs: [['5']] },
    ]);
    expect(got[1]).toMatchObject({ ok: false, error: 'timeout' });
    expect(got[0]).toMatchObject({ ok: true, results: [{ ok: true, value: '2' }] });
    expect(got[2]).toMatchObject({ ok: true, results: [{ ok: true, value: '10' }] });
    expect(v.restarts).toBe(2); // the batch overran, then the culprit alone
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1200); // two guarded requests overran
    // The restarted worker still answers.
    expect(await v.verify([{ program: '7 // 2', inputs: [[]] }])).toMatchObject([
      { ok: true, results: [{ ok: true, value: '3' }] },
    ]);
  });

  it('does not count a slow worker start-up against the per-request guard', async () => {
    const late = nodeWorkerFactory(new URL('./fixtures/late-ready.worker.ts', import.meta.url));
    const v = new WorkerVerifier(late, LIMITS, 300);
    open.push(v);
    const got = await v.verify([{ program: 'x * 3', inputs: [['7']] }]);
    expect(got).toMatchObject([{ ok: true, results: [{ ok: true, value: '21' }] }]);
    expect(v.restarts).toBe(0);
  });
});
