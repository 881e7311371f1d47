// The sampler's top-k / top-p thresholds by a SAMPLE_FANOUT-ary search against the binary search it
// replaced: fanout 2 probes lo + (hi − lo)/2 + 1 and keeps lo or lowers hi exactly as the old 32-step
// loop did, so it is that sampler. Every output word (token, base log-prob, sampled log-prob) must be
// bit-identical, on both reduction builds, for rows with ties, a flat row, a spiked row and a real-vocabulary
// row, at thresholds from top-1 to nearly the whole vocabulary.
import { describe, expect, it } from 'vitest';
import { SampleKernel } from '../../src/engine/kernels/sample.ts';
import { PORTABLE_SHADERS, type ShaderFeatures } from '../../src/engine/gpu.ts';
import { getTestDevice, randomF32 } from '../helpers/gpu.ts';
import { readU32, runKernel, storageBuffer, uploadF32, uploadU32 } from './kernel-harness.ts';

const SUBGROUP_SHADERS: ShaderFeatures = { f16: false, subgroups: true };

/** Rows of length V: Gaussian, coarse values with many exact ties, all equal, one spike, wide spread. */
function rows(V: number, seed: number): Float32Array {
  const R = 5;
  const out = new Float32Array(R * V);
  const g = randomF32(V, seed, 3);
  for (let i = 0; i < V; i++) {
    out[i] = g[i];
    out[V + i] = Math.round(g[i] * 2) / 2;
    out[2 * V + i] = 0.25;
    out[3 * V + i] = i === 7 ? 12 : g[i] * 0.1;
    out[4 * V + i] = g[i] * 40;
  }
  return out;
}

describe('sampler thresholds: fanout search = binary search', () => {
  const settings = [
    { temperature: 1, topK: 1, topP: 1 },
    { temperature: 0.7, topK: 2, topP: 1 },
    { temperature: 1.3, topK: 50, topP: 1 },
    { temperature: 1, topK: 0, topP: 0.9 },
    { temperature: 0.8, topK: 0, topP: 0.01 },
    { temperature: 1, topK: 0, topP: 0.999 },
    { temperature: 0.9, topK: 20, topP: 0.5 },
  ];

  for (const [name, features] of [
    ['tree', PORTABLE_SHADERS],
    ['subgroups', SUBGROUP_SHADERS],
  ] as const) {
    it(`every output word equal, ${name} reductions, V 4099 and 151936`, async () => {
      const device = await getTestDevice();
      const fast = new SampleKernel(device, features);
      const binary = new SampleKernel(device, features, 2);
      for (const V of [4099, 151_936]) {
        const logits = rows(V, V);
        const R = logits.length / V;
        const lb = uploadF32(device, logits);
        const rowSeq = uploadU32(device, [0, 1, 2, 3, 4]);
        const all = [...settings, { temperature: 1, topK: V - 1, topP: 0.95 }];
        for (const s of V > 5000 ? [settings[3]] : all) {
          const run = async (k: SampleKernel) => {
            const out = storageBuffer(device, R * 12);
            await runKernel(device, k, { logits: lb, rowSeq, out, R, V, seed: 9, step: 3, ...s });
            return Array.from(await readU32(device, out, R * 3));
          };
          const want = await run(binary);
          const got = await run(fast);
          expect(got, `V ${V} ${JSON.stringify(s)}`).toEqual(want);
        }
      }
    });
  }

  it('top-1 keeps only the argmax at fanouts 3 and 32', async () => {
    const device = await getTestDevice();
    const V = 1031;
    const logits = rows(V, 3);
    const lb = uploadF32(device, logits);
    for (const fanout of [3, 32]) {
      const out = storageBuffer(device, 5 * 12);
      const k = new SampleKernel(device, PORTABLE_SHADERS, fanout);
      const args = { logits: lb, rowSeq: uploadU32(device, [0, 1, 2, 3, 4]), out, R: 5, V };
      await runKernel(device, k, { ...args, temperature: 1, topK: 1, topP: 1, seed: 1, step: 0 });
      const u = await readU32(device, out, 15);
      for (const r of [0, 3, 4]) {
        const row = logits.subarray(r * V, (r + 1) * V);
        expect(u[r * 3]).toBe(row.indexOf(Math.max(...row)));
        // The sampled distribution is a point mass: log-prob 0.
        expect(new Float32Array(u.buffer)[r * 3 + 2]).toBe(0);
      }
    }
    expect(() => new SampleKernel(device, PORTABLE_SHADERS, 1)).toThrow(/fanout 1/);
  });
});
