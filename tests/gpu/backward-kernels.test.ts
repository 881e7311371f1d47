// Every backward kernel against the reference backward (f32 inputs; the reference accumulates in f64).
// Errors are reported relative to the largest reference value: maxAbs / max|ref|.
import { describe, expect, it } from 'vitest';
import { readF32, storageBuffer, uploadF32 } from '../../src/engine/buffers.ts';
import { Dispatcher, type Kernel } from '../../src/engine/dispatch.ts';
import { AttentionDkvKernel, AttentionDqKernel } from '../../src/engine/kernels/attention-backward.ts';
import { LmLossKernel } from '../../src/engine/kernels/logprob.ts';
import {
  chooseSplits,
  encodeMatmulGrad,
  MatmulGradKernel,
  MatmulSplitReduceKernel,
} from '../../src/engine/kernels/matmul.ts';
import { RmsNormBackwardKernel } from '../../src/engine/kernels/rmsnorm.ts';
import { RopeBackwardKernel, ropeTable } from '../../src/engine/kernels/rope-kv.ts';
import { SwigluBackwardKernel } from '../../src/engine/kernels/swiglu.ts';
import { policyGradientLoss } from '../../src/engine/reference/loss.ts';
import { pgTestSequences } from '../helpers/pg-sequences.ts';
import { attention, attentionProbOffsets } from '../../src/engine/reference/ops.ts';
import {
  attentionBackward,
  rmsnormBackward,
  ropeBackward,
  swigluBackward,
} from '../../src/engine/reference/ops-backward.ts';
import { f16ToF32, f32ToF16 } from '../../src/model/dtype.ts';
import { getTestDevice, randomF32 } from '../helpers/gpu.ts';

function relErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let m = 0;
  let scale = 0;
  for (let i = 0; i < want.length; i++) {
    m = Math.max(m, Math.abs(got[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
  }
  return m / scale;
}

const errors: Record<string, number> = {};
function record(name: string, err: number): number {
  errors[name] = Math.max(errors[name] ?? 0, err);
  return err;
}

async function run<A>(device: GPUDevice, kernel: Kernel<A>, args: A): Promise<void> {
  const d = new Dispatcher(device);
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  d.dispatch(pass, 'k', kernel, args);
  pass.end();
  device.queue.submit([enc.finish()]);
  await device.queue.onSubmittedWorkDone();
}

function u32Buffer(device: GPUDevice, data: Uint32Array): GPUBuffer {
  const b = storageBuffer(device, data.byteLength);
  device.queue.writeBuffer(b, 0, data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
  return b;
}

describe('backward kernels vs reference', () => {
  it('strided matmul (NN/NT/TN/TT, offsets, accumulate, alpha), f32 and f16 B', async () => {
    const device = await getTestDevice();
    for (const bdtype of ['f32', 'f16'] as const) {
      const kernel = new MatmulGradKernel(device, bdtype);
      // f16 B only where the backward uses it: dX = dY·W (NN).
      const layouts =
        bdtype === 'f32'
          ? ([
              [false, false],
              [false, true],
              [true, false],
              [true, true],
            ] as const)
          : ([[false, false]] as const);
      for (const [transA, transB] of layouts) {
        const [M, N, K] = [67, 19, 40];
        const lda = (transA ? M : K) + 3;
        const ldb = (transB ? K : N) + 5;
        const aOff = 2;
        const bOff = 4;
        const ldo = N + 7;
        const oOff = 1;
        const a = randomF32(aOff + (transA ? K : M) * lda, 1);
        let b = randomF32(bOff + (transB ? N : K) * ldb, 2);
        if (bdtype === 'f16') b = f16ToF32(f32ToF16(b));
        const out0 = randomF32(oOff + M * ldo, 3);
        const want = Float32Array.from(out0);
        for (let m = 0; m < M; m++)
          for (let n = 0; n < N; n++) {
            let acc = 0;
            for (let k = 0; k < K; k++) {
              const av = transA ? a[aOff + k * lda + m] : a[aOff + m * lda + k];
              const bv = transB ? b[bOff + n * ldb + k] : b[bOff + k * ldb + n];
              acc += av * bv;
            }
            want[oOff + m * ldo + n] += 0.5 * acc;
          }
        const packed = new Uint16Array(Math.ceil(b.length / 2) * 2);
        packed.set(f32ToF16(b));
        const bBuf =
          bdtype === 'f32' ? uploadF32(device, b) : u32Buffer(device, new Uint32Array(packed.buffer));
        const out = uploadF32(device, out0);
        await run(device, kernel, {
          a: uploadF32(device, a),
          b: bBuf,
          out,
          M,
          N,
          K,
          transA,
          transB,
          lda,
          ldb,
          ldo,
          aOff,
          bOff,
          oOff,
          accumulate: true,
          alpha: 0.5,
        });
        const got = await readF32(device, out, want.length);
        expect(
          record(`matmul-grad ${bdtype}`, relErr(got, want)),
          `${transA}${transB} ${bdtype}`,
        ).toBeLessThan(1e-5);
      }
    }
  });

  it('split-K matmul (long reductions, small outputs) equals the reference, accumulating', async () => {
    const device = await getTestDevice();
    const mm = new MatmulGradKernel(device, 'f32');
    const reduce = new MatmulSplitReduceKernel(device);
    const [M, N, K] = [5, 70, 1000];
    const splits = chooseSplits(M, N, K);
    expect(splits).toBeGreaterThan(1);
    const a = randomF32(K * M, 31); // transA: a [K, M]
    const b = randomF32(K * N, 32);
    const out0 = randomF32(M * N, 33);
    const want = Float32Array.from(out0);
    for (let m = 0; m < M; m++)
      for (let n = 0; n < N; n++) {
        let acc = 0;
        for (let k = 0; k < K; k++) acc += a[k * M + m] * b[k * N + n];
        want[m * N + n] += 2 * acc;
      }
    const out = uploadF32(device, out0);
    const partial = storageBuffer(device, splits * M * N * 4);
    const d = new Dispatcher(device);
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    encodeMatmulGrad(
      d,
      pass,
      'split',
      mm,
      reduce,
      {
        a: uploadF32(device, a),
        b: uploadF32(device, b),
        out,
        M,
        N,
        K,
        transA: true,
        transB: false,
        accumulate: true,
        alpha: 2,
      },
      splits,
      partial,
    );
    pass.end();
    device.queue.submit([enc.finish()]);
    expect(record('matmul-grad split-K', relErr(await readF32(device, out, M * N), want))).toBeLessThan(1e-5);
  });

  it('RMSNorm backward, plain and scatter, accumulating', async () => {
    const device = await getTestDevice();
    const [T, C] = [9, 96];
    const x = randomF32(T * C, 4, 2);
    const w = randomF32(C, 5, 0.25).map((v) => v + 1);
    const rstd = new Float32Array(T);
    for (let t = 0; t < T; t++) {
      let ss = 0;
      for (let c = 0; c < C; c++) ss += x[t * C + c] ** 2;
      rstd[t] = 1 / Math.sqrt(ss / C + 1e-6);
    }
    for (const scatter of [false, true]) {
      const rowIdx = scatter ? [7, 2, 4] : Array.from({ length: T }, (_, i) => i);
      const R = rowIdx.length;
      const dy = randomF32(R * C, 6);
      const dx0 = randomF32(T * C, 7);
      const want = Float32Array.from(dx0);
      rowIdx.forEach((row, r) =>
        rmsnormBackward(
          want.subarray(row * C, (row + 1) * C),
          null,
          dy.subarray(r * C, (r + 1) * C),
          x.subarray(row * C, (row + 1) * C),
          w,
          rstd.subarray(row, row + 1),
          1,
          C,
        ),
      );
      const dx = uploadF32(device, dx0);
      await run(device, new RmsNormBackwardKernel(device, scatter), {
        x: uploadF32(device, x),
        weight: uploadF32(device, w),
        dy: uploadF32(device, dy),
        dx,
        rowIdx: scatter ? u32Buffer(device, Uint32Array.from(rowIdx)) : undefined,
        R,
        C,
        eps: 1e-6,
      });
      expect(record('rmsnorm backward', relErr(await readF32(device, dx, T * C), want))).toBeLessThan(2e-6);
    }
  });

  it('SwiGLU backward (fused gate|up)', async () => {
    const device = await getTestDevice();
    const [T, I] = [5, 70];
    const gu = randomF32(T * 2 * I, 8, 4);
    const dact = randomF32(T * I, 9);
    const gate = new Float32Array(T * I);
    const up = new Float32Array(T * I);
    for (let t = 0; t < T; t++)
      for (let i = 0; i < I; i++) {
        gate[t * I + i] = gu[t * 2 * I + i];
        up[t * I + i] = gu[t * 2 * I + I + i];
      }
    const dg = new Float32Array(T * I);
    const du = new Float32Array(T * I);
    swigluBackward(dg, du, dact, gate, up, T * I);
    const want = new Float32Array(T * 2 * I);
    for (let t = 0; t < T; t++)
      for (let i = 0; i < I; i++) {
        want[t * 2 * I + i] = dg[t * I + i];
        want[t * 2 * I + I + i] = du[t * I + i];
      }
    const dgu = storageBuffer(device, T * 2 * I * 4);
    await run(device, new SwigluBackwardKernel(device), {
      gu: uploadF32(device, gu),
      dact: uploadF32(device, dact),
      dgu,
      T,
      I,
    });
    expect(record('swiglu backward', relErr(await readF32(device, dgu, T * 2 * I), want))).toBeLessThan(2e-6);
  });

  // Two sequences (lengths 5 and 3) in slots 1 and 0 of a cache with maxLen 6, rows packed 0..7.
  const seqLens = [5, 3];
  const seqSlots = [1, 0];
  const maxLen = 6;
  const shape = { nHeads: 4, nKvHeads: 2, headDim: 8 };
  const T = 8;
  const Cq = shape.nHeads * shape.headDim;
  const Ckv = shape.nKvHeads * shape.headDim;
  const rowsOf = () => {
    const rows = new Uint32Array(T * 2);
    let t = 0;
    seqLens.forEach((len, s) => {
      for (let pos = 0; pos < len; pos++, t++) rows.set([seqSlots[s], pos], 2 * t);
    });
    return rows;
  };
  const toCache = (packed: Float32Array): Float32Array => {
    const cache = new Float32Array(2 * maxLen * Ckv);
    let t = 0;
    seqLens.forEach((len, s) => {
      for (let pos = 0; pos < len; pos++, t++)
        cache.set(packed.subarray(t * Ckv, (t + 1) * Ckv), (seqSlots[s] * maxLen + pos) * Ckv);
    });
    return cache;
  };

  it('RoPE backward + gather into fused dqkv', async () => {
    const device = await getTestDevice();
    const { nHeads, nKvHeads, headDim: D } = shape;
    const dq = randomF32(T * Cq, 10);
    const dk = randomF32(T * Ckv, 11);
    const dv = randomF32(T * Ckv, 12);
    const pos = Array.from(rowsOf().filter((_, i) => i % 2 === 1));
    const wq = Float32Array.from(dq);
    const wk = Float32Array.from(dk);
    ropeBackward(wq, pos, T, nHeads, D, 10000);
    ropeBackward(wk, pos, T, nKvHeads, D, 10000);
    const W = Cq + 2 * Ckv;
    const want = new Float32Array(T * W);
    for (let t = 0; t < T; t++) {
      want.set(wq.subarray(t * Cq, (t + 1) * Cq), t * W);
      want.set(wk.subarray(t * Ckv, (t + 1) * Ckv), t * W + Cq);
      want.set(dv.subarray(t * Ckv, (t + 1) * Ckv), t * W + Cq + Ckv);
    }
    const dqkv = storageBuffer(device, T * W * 4);
    await run(device, new RopeBackwardKernel(device), {
      dq: uploadF32(device, dq),
      dk: uploadF32(device, toCache(dk)),
      dv: uploadF32(device, toCache(dv)),
      rows: u32Buffer(device, rowsOf()),
      cosSin: uploadF32(device, ropeTable(maxLen, D, 10000)),
      dqkv,
      T,
      nH: nHeads,
      nKv: nKvHeads,
      D,
      maxLen,
    });
    expect(record('rope backward', relErr(await readF32(device, dqkv, T * W), want))).toBeLessThan(2e-6);
  });

  for (const kv of ['f32', 'f16'] as const)
    for (const adapterKind of ['gpu', 'cpu'] as const)
      it(`causal GQA attention backward, mixed lengths, cache layout, ${kv} cache, ${adapterKind} kernels`, async () => {
        const device = await getTestDevice();
        const { nHeads, nKvHeads, headDim: D } = shape;
        const q = randomF32(T * Cq, 13, 2);
        const round = (x: Float32Array) => (kv === 'f16' ? f16ToF32(f32ToF16(x)) : x);
        const k = round(randomF32(T * Ckv, 14, 2));
        const v = round(randomF32(T * Ckv, 15));
        const cacheBuf = (x: Float32Array) =>
          kv === 'f32' ? uploadF32(device, x) : u32Buffer(device, new Uint32Array(f32ToF16(x).buffer));
        const dO = randomF32(T * Cq, 16);
        const offsets = [0, 5, 8];
        const o = new Float32Array(T * Cq);
        const probs = new Float32Array(attentionProbOffsets(offsets, nHeads)[2]);
        attention(o, q, k, v, offsets, shape, probs);
        const dq = new Float32Array(T * Cq);
        const dk = new Float32Array(T * Ckv);
        const dv = new Float32Array(T * Ckv);
        attentionBackward(dq, dk, dv, dO, q, k, v, probs, offsets, shape);
        const slotRows = new Uint32Array(4);
        slotRows.set([5, 3], 0); // slot 0 = sequence 1 (rows 5..7)
        slotRows.set([0, 5], 2); // slot 1 = sequence 0 (rows 0..4)
        const bufs = {
          q: uploadF32(device, q),
          o: uploadF32(device, o),
          dO: uploadF32(device, dO),
          rows: u32Buffer(device, rowsOf()),
          slotRows: u32Buffer(device, slotRows),
          kCache: cacheBuf(toCache(k)),
          vCache: cacheBuf(toCache(v)),
          dq: storageBuffer(device, T * Cq * 4),
          dk: storageBuffer(device, 2 * maxLen * Ckv * 4),
          dv: storageBuffer(device, 2 * maxLen * Ckv * 4),
          stats: storageBuffer(device, T * nHeads * 8),
        };
        const args = { ...bufs, T, nH: nHeads, nKv: nKvHeads, D, maxLen, nSlots: 2, maxRows: 5 };
        const d = new Dispatcher(device);
        const enc = device.createCommandEncoder();
        const pass = enc.beginComputePass();
        const features = { f16: false, subgroups: false, adapterKind };
        d.dispatch(pass, 'dq', new AttentionDqKernel(device, kv, features), args);
        d.dispatch(pass, 'dkv', new AttentionDkvKernel(device, kv, features), args);
        pass.end();
        device.queue.submit([enc.finish()]);
        expect(
          record('attention backward dq', relErr(await readF32(device, bufs.dq, T * Cq), dq)),
        ).toBeLessThan(1e-5);
        expect(
          record(
            'attention backward dk',
            relErr(await readF32(device, bufs.dk, 2 * maxLen * Ckv), toCache(dk)),
          ),
        ).toBeLessThan(1e-5);
        expect(
          record(
            'attention backward dv',
            relErr(await readF32(device, bufs.dv, 2 * maxLen * Ckv), toCache(dv)),
          ),
        ).toBeLessThan(1e-5);
      });

  for (const [label, temperature, weights] of [
    ['', 1, [1, 1]],
    [', tempered (T 0.7) and weighted', 0.7, [1.9, 0.3]],
  ] as const)
    it(`LM-head loss + dlogits (clip, entropy, k3 KL) in place${label}`, async () => {
      const device = await getTestDevice();
      const V = 300;
      const R = 5;
      const logits = randomF32(R * V, 17, 4);
      const targets = [3, 299, 0, 150, 77];
      const tokenOffsets = [0, 3, 5];
      const lp0 = policyGradientLoss(logits, targets, tokenOffsets, [{ advantage: 1 }, { advantage: 1 }], V, {
        clipEps: 0.2,
        entropyCoef: 0,
        klBeta: 0,
        totalTokens: 1,
        temperature,
      }).logprobs;
      const shift = [0.05, 0.6, -0.5, 0.1, -0.03];
      const seqs = pgTestSequences(lp0, tokenOffsets, { shift, withRef: true, weights }).map((q) => ({
        ...q,
        refLogprobs: q.refLogprobs!,
        weight: q.weight!,
      }));
      const opts = { clipEps: 0.2, entropyCoef: 0.1, klBeta: 0.2, totalTokens: 11, temperature };
      const want = policyGradientLoss(logits, targets, tokenOffsets, seqs, V, opts);
      const rowData = new Float32Array(R * 4);
      for (let s = 0; s < 2; s++)
        for (let t = tokenOffsets[s]; t < tokenOffsets[s + 1]; t++)
          rowData.set(
            [
              seqs[s].advantage,
              seqs[s].oldLogprobs[t - tokenOffsets[s]],
              seqs[s].refLogprobs[t - tokenOffsets[s]],
              seqs[s].weight,
            ],
            4 * t,
          );
      const lbuf = uploadF32(device, logits);
      const rowOut = storageBuffer(device, R * 16);
      await run(device, new LmLossKernel(device), {
        logits: lbuf,
        targets: u32Buffer(device, Uint32Array.from(targets)),
        rowData: uploadF32(device, rowData),
        rowOut,
        R,
        V,
        invN: 1 / opts.totalTokens,
        clipEps: opts.clipEps,
        entropyCoef: opts.entropyCoef,
        klBeta: opts.klBeta,
        temperature,
        hasOld: true,
        hasRef: true,
      });
      expect(
        record(`lm-loss dlogits${label}`, relErr(await readF32(device, lbuf, R * V), want.dlogits)),
      ).toBeLessThan(1e-5);
      const out = await readF32(device, rowOut, R * 4);
      let loss = 0;
      for (let t = 0; t < R; t++) {
        loss += out[4 * t];
        expect(out[4 * t + 1]).toBeCloseTo(want.logprobs[t], 5);
      }
      expect(loss / opts.totalTokens).toBeCloseTo(want.loss, 5);
      expect(out.filter((_, i) => i % 4 === 3).reduce((a, b) => a + b, 0)).toBe(want.clipped);
      console.info('backward kernel errors (max |gpu − ref| / max |ref|):', JSON.stringify(errors));
    });
});
