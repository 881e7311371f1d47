// The bench's per-kernel timings on a tiny model: every dispatch of the decode step and of the
// prefill is timed, per-kind totals add up, and the GPU time fits inside the step's wall time.
import { describe, expect, it } from 'vitest';
import { profileKernels, runBench, type PhaseProfile } from '../../bench/engine-bench.ts';
import { Engine } from '../../src/engine/engine.ts';
import { getTestContext } from '../helpers/gpu.ts';
import { tinyEngine, tinyModel } from './tiny-engine.ts';

/** Kernel kinds of a decode step without LoRA (qwen2-forward.ts's encode functions). */
const DECODE_KINDS = [
  'attn',
  'down',
  'embed',
  'final norm',
  'gateUp',
  'lm head',
  'norm',
  'o',
  'qkv',
  'rope',
  'sample',
  'swiglu',
];

function checkPhase(p: PhaseProfile): void {
  expect(p.kinds.reduce((n, k) => n + k.dispatches, 0)).toBe(p.dispatches);
  for (const k of p.kinds) {
    expect(k.ms).toBeGreaterThanOrEqual(0);
    expect(k.share).toBeGreaterThanOrEqual(0);
  }
  const sum = p.kinds.reduce((s, k) => s + k.ms, 0);
  expect(sum).toBeCloseTo(p.gpuMs, 9);
  expect(p.gpuMs).toBeGreaterThan(0);
  expect(p.gpuMs).toBeLessThanOrEqual(p.wallMs);
  expect(p.kinds.reduce((s, k) => s + k.share, 0)).toBeCloseTo(1, 9);
}

describe('bench per-kernel timings', () => {
  it('time every dispatch of a prefill and a decode step, per kernel kind', async () => {
    const engine = await tinyEngine(await tinyModel(3, 'BF16'), { maxBatch: 2, maxSeqLen: 16 });
    expect(engine.ctx.report.features['timestamp-query']).toBe(true);
    const r = await runBench(engine, 'tiny', {
      batches: [1, 2],
      promptLen: 5,
      newTokens: 3,
      matmulSize: 64,
      seed: 1,
      kernelTimes: true,
    });
    for (const x of r.results) {
      const k = x.kernelTimes;
      if (!k?.available) throw new Error(`kernel timings missing: ${JSON.stringify(k)}`);
      expect(k.resolutionNs).toBeGreaterThan(0);
      const d = k.decodeStep!;
      // Every dispatch of the step is timed: as many as the unprofiled decode step records.
      expect(d.dispatches).toBe(x.dispatchesPerDecodeStep);
      // Every weight at least once per step (the exact count: weight-reads.test.ts).
      expect(x.weightReadRatio).toBeGreaterThanOrEqual(1);
      expect(d.kinds.map((t) => t.kind).sort()).toEqual(DECODE_KINDS);
      checkPhase(d);
      // Prefill: one gemm pass (embedding + layers) plus the first token's head, LM head and sampling.
      expect(k.prefill.dispatches).toBe(d.dispatches);
      checkPhase(k.prefill);
    }
    // The profiler is detached afterwards: normal generation records into its own pass again.
    expect(engine.forward.dispatcher.profiler).toBeNull();
  });

  it('say why when the device has no timestamp queries', async () => {
    const model = await tinyModel(3, 'BF16');
    const ctx = await getTestContext({ disableFeatures: ['timestamp-query'] });
    const engine = await Engine.load(ctx, model.config, model.weights, model.tokenizer, {
      maxBatch: 1,
      maxSeqLen: 8,
    });
    const k = await profileKernels(engine, [[1, 2, 3]], 2);
    expect(k).toEqual({ available: false, reason: expect.stringContaining("no 'timestamp-query'") });
  });
});
