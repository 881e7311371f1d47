// The exported ONNX model on onnxruntime-node against the plain-TS f32 reference forward: full
// prefill, prefill + decode steps through the KV cache, a left-padded batch, and a LoRA-merged export.
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomRefLora } from '../../../src/engine/reference/random.ts';
import { qwen2Logits } from '../../../src/engine/reference/qwen2.ts';
import { exportOnnx, type OnnxExportResult } from '../../../src/onnx/export.ts';
import { loadOnnxNode, nodeOnnxTarget } from '../../../src/onnx/node.ts';
import { LOGIT_TOLERANCE } from '../../../src/onnx/parity.ts';
import { decodeModel, DataType, type ValueInfoProto } from '../../../src/onnx/proto.ts';
import { VARIANT_FILE, type OnnxVariant } from '../../../src/onnx/qwen2-graph.ts';
import type { OnnxCausalLM } from '../../../src/onnx/runner.ts';
import { measureOnnxBatch } from '../../../src/onnx/speed.ts';
import { loadOnnxWasm } from '../../../src/onnx/web.ts';
import { maxAbsDiff, tinyFixture, type TinyFixture } from './fixture.ts';

const VARIANTS: OnnxVariant[] = ['fp32', 'fp16'];
const IDS = [256, 72, 101, 108, 108, 111, 44, 32, 119, 111, 114, 108, 100];

let fx: TinyFixture;
let exportDir: string;
let result: OnnxExportResult;
const sessions = new Map<OnnxVariant, OnnxCausalLM>();
let refLogits: Float32Array;
let V: number;

beforeAll(async () => {
  fx = await tinyFixture(3);
  exportDir = join(fx.root, 'onnx-export');
  result = await exportOnnx(fx.source, fx.model, await nodeOnnxTarget(exportDir));
  for (const v of VARIANTS) sessions.set(v, await loadOnnxNode(exportDir, v));
  V = fx.model.config.vocabSize;
  refLogits = Float32Array.from(qwen2Logits(fx.model.config, fx.weights, [{ ids: IDS }]).logits);
});

afterAll(async () => {
  for (const s of sessions.values()) await s.release();
  await fx?.cleanup();
});

describe('ONNX export: files and graph', () => {
  it('writes the transformers.js folder layout with external data', async () => {
    expect(result.files.sort()).toEqual(
      [
        'config.json',
        'generation_config.json',
        'tokenizer.json',
        'tokenizer_config.json',
        'onnx/model.onnx',
        'onnx/model.onnx_data',
        'onnx/model_fp16.onnx',
        'onnx/model_fp16.onnx_data',
      ].sort(),
    );
    for (const v of result.variants) {
      expect((await stat(join(exportDir, v.dataFile))).size).toBe(v.dataBytes);
      expect((await stat(join(exportDir, v.modelFile))).size).toBe(v.modelBytes);
    }
    // Every parameter once (tied head: no second embedding), f32 then half.
    const params = fx.model.weights.tensors.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
    const fp32 = result.variants.find((v) => v.variant === 'fp32')!;
    const fp16 = result.variants.find((v) => v.variant === 'fp16')!;
    expect(fp32.dataBytes).toBeGreaterThanOrEqual(params * 4);
    expect(fp32.dataBytes).toBeLessThan(params * 4 + 64 * fx.model.weights.tensors.length);
    expect(fp16.dataBytes).toBeLessThan(params * 2 + 64 * fx.model.weights.tensors.length);
    const config = JSON.parse(await readFile(join(exportDir, 'config.json'), 'utf8'));
    expect(config.model_type).toBe('qwen2');
    expect(config['transformers.js_config'].use_external_data_format).toEqual({
      'model.onnx': 1,
      'model_fp16.onnx': 1,
    });
  });

  it('has the input/output names, types and symbolic dims transformers.js feeds', async () => {
    const model = decodeModel(await readFile(join(exportDir, 'onnx', VARIANT_FILE.fp16)));
    const g = model.graph!;
    const inputs = g.input ?? [];
    const dims = (vi: ValueInfoProto) =>
      vi.type!.tensorType!.shape!.dim!.map((d) => (d.dimParam ? d.dimParam : Number(d.dimValue)));
    const byName = new Map(inputs.map((i) => [i.name, i]));
    expect(dims(byName.get('input_ids')!)).toEqual(['batch_size', 'sequence_length']);
    expect(dims(byName.get('attention_mask')!)).toEqual(['batch_size', 'total_sequence_length']);
    expect(dims(byName.get('position_ids')!)).toEqual(['batch_size', 'sequence_length']);
    const past = byName.get('past_key_values.1.value')!;
    expect(dims(past)).toEqual(['batch_size', 2, 'past_sequence_length', 16]);
    expect(past.type!.tensorType!.elemType).toBe(DataType.FLOAT16);
    expect(dims(byName.get('num_logits_to_keep')!)).toEqual([]);
    expect(inputs).toHaveLength(4 + 2 * 2);
    const outs = new Map((g.output ?? []).map((o) => [o.name, o]));
    expect(dims(outs.get('logits')!)).toEqual(['batch_size', 'logits_length', V]);
    expect(outs.get('logits')!.type!.tensorType!.elemType).toBe(DataType.FLOAT);
    expect(dims(outs.get('present.0.key')!)).toEqual(['batch_size', 2, 'total_sequence_length', 16]);
    const weights = (g.initializer ?? []).filter((t) => t.name!.startsWith('model.'));
    expect(weights.length).toBeGreaterThan(0);
    for (const t of weights) {
      expect(t.dataLocation).toBe(1); // EXTERNAL
      expect(t.externalData!.find((e) => e.key === 'location')!.value).toBe('model_fp16.onnx_data');
    }
  });
});

describe.each(VARIANTS)('ONNX %s on onnxruntime-node vs the f32 reference', (variant) => {
  const tol = LOGIT_TOLERANCE[variant];

  it(`matches every position's logits of a full prefill within ${tol}`, async () => {
    const out = await sessions.get(variant)!.forward({ ids: [IDS] });
    expect(out.logits).toHaveLength(IDS.length * V);
    const diff = maxAbsDiff(out.logits, refLogits);
    expect(diff).toBeLessThanOrEqual(tol);
    // The bound is meaningful: the logits themselves are far larger.
    expect(maxAbsDiff(refLogits, new Float32Array(refLogits.length))).toBeGreaterThan(20 * tol);
  });

  it('runs the LM head on the last num_logits_to_keep positions only (0: all)', async () => {
    const lm = sessions.get(variant)!;
    for (const k of [1, 3]) {
      const out = await lm.forward({ ids: [IDS], logitsToKeep: k });
      expect(out.rows).toBe(k);
      expect(out.logits).toHaveLength(k * V);
      expect(maxAbsDiff(out.logits, refLogits.subarray((IDS.length - k) * V))).toBeLessThanOrEqual(tol);
    }
    expect((await lm.forward({ ids: [IDS], logitsToKeep: 0 })).rows).toBe(IDS.length);
  });

  it('matches through the KV cache: prefill, then one and two decode steps with past', async () => {
    const lm = sessions.get(variant)!;
    const split = 9;
    const prefill = await lm.forward({ ids: [IDS.slice(0, split)] });
    expect(maxAbsDiff(prefill.logits, refLogits, split * V)).toBeLessThanOrEqual(tol);
    expect(prefill.present.length).toBe(split);
    const dims = prefill.present.tensors['present.1.key'].dims;
    expect(dims).toEqual([1, 2, split, 16]);
    let past = prefill.present;
    for (let pos = split; pos < split + 2; pos++) {
      const step = await lm.forward({ ids: [[IDS[pos]]] }, past);
      expect(step.seq).toBe(1);
      const want = refLogits.subarray(pos * V, (pos + 1) * V);
      expect(maxAbsDiff(step.logits, want)).toBeLessThanOrEqual(tol);
      past = step.present;
    }
    // A chunk of several tokens with past (chunked prefill) too.
    const rest = await lm.forward({ ids: [IDS.slice(split + 2)] }, past);
    expect(maxAbsDiff(rest.logits, refLogits.subarray((split + 2) * V))).toBeLessThanOrEqual(tol);
  });
});

describe('ONNX fp32: batches and LoRA', () => {
  it('left-padded batch: each row matches its own unpadded reference', async () => {
    const short = IDS.slice(0, 6);
    const pad = IDS.length - short.length;
    const lm = sessions.get('fp32')!;
    // transformers.js's padding: zeros in the mask, position_ids = cumsum(mask) − 1 (1 where masked).
    const out = await lm.forward({
      ids: [IDS, [...new Array<number>(pad).fill(0), ...short]],
      attentionMask: [IDS.map(() => 1), [...new Array<number>(pad).fill(0), ...short.map(() => 1)]],
      positionIds: [IDS.map((_, i) => i), [...new Array<number>(pad).fill(1), ...short.map((_, i) => i)]],
    });
    const T = IDS.length;
    expect(maxAbsDiff(out.logits.subarray(0, T * V), refLogits)).toBeLessThanOrEqual(LOGIT_TOLERANCE.fp32);
    const refShort = qwen2Logits(fx.model.config, fx.weights, [{ ids: short }]).logits;
    const row2 = out.logits.subarray((T + pad) * V, 2 * T * V);
    expect(maxAbsDiff(row2, refShort)).toBeLessThanOrEqual(LOGIT_TOLERANCE.fp32);
    // Next step of both rows through the cache, mask extended by one.
    const step = await lm.forward(
      {
        ids: [[IDS[3]], [IDS[3]]],
        attentionMask: [
          [...IDS.map(() => 1), 1],
          [...new Array<number>(pad).fill(0), ...short.map(() => 1), 1],
        ],
        positionIds: [[T], [short.length]],
      },
      out.present,
    );
    const refNext = qwen2Logits(fx.model.config, fx.weights, [{ ids: [...short, IDS[3]] }]).logits;
    expect(maxAbsDiff(step.logits.subarray(V), refNext.subarray(short.length * V))).toBeLessThanOrEqual(
      LOGIT_TOLERANCE.fp32,
    );
  });

  it('a LoRA-merged export matches the reference forward with the adapter', async () => {
    const cfg = fx.model.config;
    const lora = randomRefLora(cfg, 11, 4, 8, ['self_attn.q_proj', 'self_attn.v_proj', 'mlp.down_proj']);
    const dir = join(fx.root, 'onnx-lora');
    await exportOnnx(fx.source, fx.model, await nodeOnnxTarget(dir), { variants: ['fp32'], lora });
    const lm = await loadOnnxNode(dir, 'fp32');
    try {
      const want = qwen2Logits(cfg, fx.weights, [{ ids: IDS }], lora).logits;
      const got = (await lm.forward({ ids: [IDS] })).logits;
      expect(maxAbsDiff(got, want)).toBeLessThanOrEqual(LOGIT_TOLERANCE.fp32);
      // The adapter changes the logits by far more than the tolerance (the merge is not a no-op).
      expect(maxAbsDiff(want, refLogits)).toBeGreaterThan(100 * LOGIT_TOLERANCE.fp32);
    } finally {
      await lm.release();
    }
  });

  it('rejects LoRA pairs that do not fit the model', async () => {
    const cfg = fx.model.config;
    const good = randomRefLora(cfg, 1, 2, 4, ['mlp.up_proj']);
    const target = await nodeOnnxTarget(join(fx.root, 'bad'));
    await expect(
      exportOnnx(fx.source, fx.model, target, {
        lora: { 'model.layers.7.mlp.up_proj': good['model.layers.0.mlp.up_proj'] },
      }),
    ).rejects.toThrow(/not a projection of this 2-layer model/);
    await expect(
      exportOnnx(fx.source, fx.model, target, {
        lora: { 'model.layers.0.mlp.down_proj': good['model.layers.0.mlp.up_proj'] },
      }),
    ).rejects.toThrow(/LoRA model.layers.0.mlp.down_proj: A has/);
  });
});

describe('onnxruntime-web (WASM backend, as the browser runs it)', () => {
  it.each(VARIANTS)('%s: the bytes + external data load and match the reference', async (variant) => {
    const lm = await loadOnnxWasm({
      variant,
      model: new Uint8Array(await readFile(join(exportDir, 'onnx', VARIANT_FILE[variant]))),
      data: new Uint8Array(await readFile(join(exportDir, 'onnx', `${VARIANT_FILE[variant]}_data`))),
    });
    try {
      const prefill = await lm.forward({ ids: [IDS.slice(0, 9)] });
      const step = await lm.forward({ ids: [[IDS[9]]] }, prefill.present);
      const tol = LOGIT_TOLERANCE[variant];
      expect(maxAbsDiff(prefill.logits, refLogits, 9 * V)).toBeLessThanOrEqual(tol);
      expect(maxAbsDiff(step.logits, refLogits.subarray(9 * V, 10 * V))).toBeLessThanOrEqual(tol);
    } finally {
      await lm.release();
    }
  });
});

describe('decode speed', () => {
  it('times a prefill and decode steps through the cache', async () => {
    const s = await measureOnnxBatch(sessions.get('fp32')!, [IDS], 4);
    expect(s).toMatchObject({ batch: 1, promptTokens: IDS.length, decodeSteps: 4 });
    expect(s.prefillMs).toBeGreaterThan(0);
    expect(s.decodeMs).toBeGreaterThan(0);
    expect(s.decodeTokensPerSecond).toBeCloseTo(4 / (s.decodeMs / 1000), 6);
  });
});

describe('an untied LM head (lm_head.weight)', () => {
  it('exports the separate head and matches the reference', async () => {
    const untied = await tinyFixture(4, { untied: true });
    try {
      expect(untied.model.config.tieWordEmbeddings).toBe(false);
      const dir = join(untied.root, 'export');
      await exportOnnx(untied.source, untied.model, await nodeOnnxTarget(dir), { variants: ['fp32'] });
      const lm = await loadOnnxNode(dir, 'fp32');
      try {
        const want = qwen2Logits(untied.model.config, untied.weights, [{ ids: IDS }]).logits;
        expect(maxAbsDiff((await lm.forward({ ids: [IDS] })).logits, want)).toBeLessThanOrEqual(
          LOGIT_TOLERANCE.fp32,
        );
        // The head really is the separate tensor: the tied computation differs.
        const tied = qwen2Logits({ ...untied.model.config, tieWordEmbeddings: true }, untied.weights, [
          { ids: IDS },
        ]);
        expect(maxAbsDiff(tied.logits, want)).toBeGreaterThan(100 * LOGIT_TOLERANCE.fp32);
      } finally {
        await lm.release();
      }
    } finally {
      await untied.cleanup();
    }
  });
});
