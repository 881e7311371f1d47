import { describe, expect, it } from 'vitest';
import { GpuAdamW, type TrainableTensor } from '../../src/engine/adamw.ts';
import { readF32, storageBuffer, uploadF32 } from '../../src/engine/buffers.ts';
import { adamwStep, clipFactor, globalGradNorm } from '../../src/engine/reference/adamw.ts';
import { getTestDevice, randomF32 } from '../helpers/gpu.ts';
import { learningRate } from '../../src/engine/lr-schedule.ts';

describe('GPU AdamW + global grad-norm clip vs reference', () => {
  it('three steps over several tensors: clipped, then not; warm-up; weight decay', async () => {
    const device = await getTestDevice();
    const sizes = [5, 300, 1000];
    const params = sizes.map((n, i) => randomF32(n, 10 + i));
    const m = sizes.map((n) => new Float32Array(n));
    const v = sizes.map((n) => new Float32Array(n));
    const tensors: TrainableTensor[] = sizes.map((n, i) => ({
      name: `t${i}`,
      param: uploadF32(device, params[i]),
      grad: storageBuffer(device, n * 4),
      m: storageBuffer(device, n * 4),
      v: storageBuffer(device, n * 4),
      n,
    }));
    const opt = new GpuAdamW(device, tensors);
    const o = {
      lr: 0.01,
      beta1: 0.9,
      beta2: 0.999,
      eps: 1e-8,
      weightDecay: 0.01,
      maxGradNorm: 1,
      warmupSteps: 2,
    };
    for (const [step, scale] of [
      [1, 1],
      [2, 0.01],
      [3, 0.5],
    ]) {
      const grads = sizes.map((n, i) => randomF32(n, 100 * step + i, scale));
      const enc0 = device.createCommandEncoder();
      opt.encodeZeroGrads(enc0);
      device.queue.submit([enc0.finish()]);
      grads.forEach((g, i) => device.queue.writeBuffer(tensors[i].grad, 0, g.buffer as ArrayBuffer));
      const enc = device.createCommandEncoder();
      opt.encodeStep(enc, o);
      device.queue.submit([enc.finish()]);
      const norm = globalGradNorm(grads);
      const f = clipFactor(norm, o.maxGradNorm);
      const lr = learningRate(o.lr, step, o.warmupSteps);
      grads.forEach((g, i) => adamwStep(params[i], g, m[i], v[i], step, f, { ...o, lr }));
      const stats = await opt.readStats();
      expect(stats.gradNorm).toBeCloseTo(norm, 4);
      expect(stats.clipFactor).toBeCloseTo(f, 6);
      if (step === 1) expect(f).toBeLessThan(0.1);
      if (step === 2) expect(f).toBe(1);
      for (let i = 0; i < sizes.length; i++) {
        const got = await readF32(device, tensors[i].param, sizes[i]);
        let err = 0;
        for (let j = 0; j < sizes[i]; j++) err = Math.max(err, Math.abs(got[j] - params[i][j]));
        // Adam's update is ~lr per element; f32 vs f64 in the ratio m/√v gives ~1e-7·lr·|steps|.
        expect(err, `step ${step} tensor ${i}`).toBeLessThan(1e-6);
      }
    }
  });
});
