// The app's ONNX Runtime bridge, its pure parts: which precision to export, how large the export is,
// the tolerance the check holds the engine to, the prompts it uses, and its out-of-memory error.
import { describe, expect, it } from 'vitest';
import { memoryFolder } from '../../../src/model/model-source.ts';
import { exportOnnx } from '../../../src/onnx/export.ts';
import { parseQwen2Config, qwen2_0_5bConfigJson, type Qwen2Config } from '../../../src/model/qwen2-config.ts';
import { LOGIT_TOLERANCE } from '../../../src/onnx/parity.ts';
import type { Tokenizer } from '../../../src/policy.ts';
import { tinyFixture } from '../onnx/fixture.ts';
import { carriedUserError, userError } from '../../../src/trainer/user-error.ts';
import {
  asMemoryError,
  checkOnnxFits,
  checkPrompts,
  chooseOnnxVariant,
  exportOnnxToMemory,
  onnxDataBytes,
  OnnxMemoryError,
  onnxWasmBytes,
  parityTolerance,
} from '../../../src/trainer/onnx-bridge.ts';

const qwen = parseQwen2Config(qwen2_0_5bConfigJson());
const tiny: Qwen2Config = {
  ...qwen,
  hiddenSize: 64,
  intermediateSize: 128,
  numHiddenLayers: 2,
  numAttentionHeads: 4,
  numKeyValueHeads: 2,
  headDim: 16,
};

describe('the export the check runs', () => {
  it('counts the weights once (tied head) in the variant’s element size', () => {
    // Qwen2-0.5B: 494,032,768 parameters, the LM head tied to the embedding.
    expect(onnxDataBytes(qwen, 'fp16')).toBe(494_032_768 * 2);
    expect(onnxDataBytes(qwen, 'fp32')).toBe(494_032_768 * 4);
    expect(onnxDataBytes({ ...qwen, tieWordEmbeddings: false }, 'fp16')).toBe(
      (494_032_768 + 151_936 * 896) * 2,
    );
  });

  it('is fp32 while it fits (lighter and faster than fp16 on onnxruntime-web), fp16 above, unless chosen', () => {
    expect(chooseOnnxVariant(tiny).variant).toBe('fp32');
    const real = chooseOnnxVariant(qwen);
    expect(real.variant).toBe('fp32');
    expect(real.reason).toMatch(/^fp32: the weights take 1885 MB; up to 2560 MB fp32/);
    // Twice the layers: 3.2 GB of fp32 weights.
    expect(chooseOnnxVariant({ ...qwen, numHiddenLayers: 48 })).toEqual({
      variant: 'fp16',
      reason: 'fp16: in fp32 the weights would take 3250 MB, over 2560 MB',
    });
    expect(chooseOnnxVariant(qwen, 'fp16')).toEqual({ variant: 'fp16', reason: 'fp16, as chosen' });
    expect(chooseOnnxVariant(tiny, 'fp16').variant).toBe('fp16');
  });

  it('is written into memory byte for byte as the folder export writes it', async () => {
    const fx = await tinyFixture(5);
    try {
      for (const variant of ['fp32', 'fp16'] as const) {
        const mem = await exportOnnxToMemory(fx.source, fx.model, variant, null, {}, () => undefined);
        const onnx = memoryFolder('reference');
        await exportOnnx(fx.source, fx.model, { root: memoryFolder('root'), onnx }, { variants: [variant] });
        const file = variant === 'fp32' ? 'model.onnx' : 'model_fp16.onnx';
        expect(mem.files.model).toEqual(onnx.files.get(file));
        expect(mem.files.data).toEqual(onnx.files.get(`${file}_data`));
      }
    } finally {
      await fx.cleanup();
    }
  });

  it('refuses up front what onnxruntime-web’s WASM memory cannot hold', () => {
    expect(() => checkOnnxFits(qwen, 'fp32')).not.toThrow();
    expect(() => checkOnnxFits(qwen, 'fp16')).not.toThrow();
    expect(onnxWasmBytes(qwen, 'fp16')).toBeGreaterThan(onnxWasmBytes(qwen, 'fp32'));
    const big = { ...qwen, numHiddenLayers: 48 };
    expect(() => checkOnnxFits(big, 'fp16')).toThrow(OnnxMemoryError);
    expect(() => checkOnnxFits(big, 'fp16')).toThrow(/needs about \d+ MB of WASM memory, over the 3840 MB/);
  });
});

describe('the check', () => {
  it('holds an f16 engine KV cache to the fp16 tolerance', () => {
    expect(parityTolerance('fp32', 'f32')).toBe(LOGIT_TOLERANCE.fp32);
    expect(parityTolerance('fp32', 'f16')).toBe(LOGIT_TOLERANCE.fp16);
    expect(parityTolerance('fp16', 'f32')).toBe(LOGIT_TOLERANCE.fp16);
  });

  it('uses the user’s prompts through the chat template, else the first eval-set prompts', () => {
    const seen: string[] = [];
    const tokenizer = {
      encode: (text: string) => (seen.push(text), [text.length]),
      applyChatTemplate: (messages: { role: string; content: string }[]) =>
        messages.map((m) => `<${m.role}>${m.content}`).join(''),
    } as unknown as Tokenizer;
    const own = checkPrompts(tokenizer, ['  What is 2 + 2?  ', '', 'x = 3']);
    expect(own.map((p) => p.label)).toEqual(['your prompt 1', 'your prompt 2']);
    expect(seen[0]).toContain('<user>What is 2 + 2?');
    seen.length = 0;
    const defaults = checkPrompts(tokenizer);
    expect(defaults.map((p) => p.label)).toEqual(['ae200-000', 'ae200-001', 'ae200-002']);
    expect(seen.every((t) => t.includes('<system>') && t.includes('<user>'))).toBe(true);
  });

  it('turns allocation failures into an error that says what to do, carried to the page', () => {
    const err = asMemoryError(new RangeError('Array buffer allocation failed'), 'fp32', 2 ** 30);
    expect(err).toBeInstanceOf(OnnxMemoryError);
    const shown = carriedUserError(err)!;
    expect(shown.title).toBe('Not enough memory for ONNX Runtime');
    expect(shown.message).toMatch(/fp32 export's weights take 1024 MB/);
    expect(shown.action).toMatch(/tabzero check-onnx/);
    expect(userError(err)).toEqual(shown);
    const other = new Error('Invalid model');
    expect(asMemoryError(other, 'fp16', 1)).toBe(other);
    expect(carriedUserError(other)).toBeNull();
  });
});
