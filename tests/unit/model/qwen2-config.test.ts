import { describe, expect, it } from 'vitest';
import { bytesSource } from '../../../src/model/byte-source.ts';
import {
  checkVocabAgainstTokenizer,
  checkWeightsAgainstConfig,
  parameterCount,
  parseQwen2Config,
  qwen2_0_5bConfigJson,
  qwen2TensorShapes,
} from '../../../src/model/qwen2-config.ts';
import { openSafetensors } from '../../../src/model/safetensors-read.ts';
import { encodeSafetensors } from '../../../src/model/safetensors-write.ts';

const real = qwen2_0_5bConfigJson();

describe('Qwen2 config', () => {
  it('parses the real Qwen2-0.5B-Instruct config', () => {
    const c = parseQwen2Config(JSON.stringify(real));
    expect(c).toMatchObject({
      hiddenSize: 896,
      numHiddenLayers: 24,
      numAttentionHeads: 14,
      numKeyValueHeads: 2,
      headDim: 64,
      intermediateSize: 4864,
      vocabSize: 151936,
      ropeTheta: 1e6,
      rmsNormEps: 1e-6,
      tieWordEmbeddings: true,
      eosTokenId: 151645,
    });
  });

  it('counts 494,032,768 parameters', () => {
    const c = parseQwen2Config(real);
    expect(parameterCount(c)).toBe(494_032_768);
    const untied = parseQwen2Config({ ...real, tie_word_embeddings: false });
    expect(parameterCount(untied)).toBe(494_032_768 + 151936 * 896);
    expect(qwen2TensorShapes(untied).at(-1)).toEqual({ name: 'lm_head.weight', shape: [151936, 896] });
  });

  const bad: [string, Record<string, unknown>, RegExp][] = [
    [
      'another architecture',
      { ...real, model_type: 'llama', architectures: ['LlamaForCausalLM'] },
      /model_type "llama" \(LlamaForCausalLM\) is not supported/,
    ],
    [
      'heads not dividing hidden',
      { ...real, num_attention_heads: 15 },
      /hidden_size 896 is not divisible by num_attention_heads 15/,
    ],
    [
      'kv heads not dividing heads',
      { ...real, num_key_value_heads: 3 },
      /num_key_value_heads 3 does not divide num_attention_heads 14/,
    ],
    ['missing hidden size', { ...real, hidden_size: undefined }, /"hidden_size" must be a positive integer/],
    ['bad rope theta', { ...real, rope_theta: -1 }, /"rope_theta" must be a positive number/],
    ['bad rms eps', { ...real, rms_norm_eps: 'x' }, /"rms_norm_eps" must be a positive number/],
    ['bad tie flag', { ...real, tie_word_embeddings: 'yes' }, /tie_word_embeddings must be true or false/],
    [
      'rope scaling',
      { ...real, rope_scaling: { type: 'yarn', factor: 4 } },
      /rope_scaling .* is not supported/,
    ],
    ['other activation', { ...real, hidden_act: 'gelu' }, /hidden_act "gelu" is not supported/],
  ];
  for (const [what, json, message] of bad) {
    it(`rejects ${what}`, () => {
      expect(() => parseQwen2Config(json)).toThrow(message);
    });
  }

  it('rejects non-JSON text', () => {
    expect(() => parseQwen2Config('{nope', 'x/config.json')).toThrow(/x\/config\.json: not valid JSON/);
  });

  it('checks the vocabulary against the tokenizer', () => {
    const c = parseQwen2Config(real);
    expect(() => checkVocabAgainstTokenizer(c, { vocabSize: 151646 })).not.toThrow();
    expect(() => checkVocabAgainstTokenizer(c, { vocabSize: 151936 })).not.toThrow();
    expect(() => checkVocabAgainstTokenizer(c, { vocabSize: 152064, lastToken: '<|x|>' })).toThrow(
      'tokenizer.json has token id 152063 ("<|x|>"), but config.json\'s vocab_size is 151936 (ids 0 to 151935): ' +
        'the tokenizer and the weights come from different models; use the tokenizer files that came with these weights.',
    );
  });
});

describe('weights against config', () => {
  const small = parseQwen2Config({
    ...real,
    hidden_size: 8,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    num_key_value_heads: 1,
    intermediate_size: 16,
    vocab_size: 32,
  });
  const specs = qwen2TensorShapes(small).map((t) => ({ ...t, dtype: 'BF16' as const }));
  const fileOf = async (list: { name: string; shape: number[]; dtype: 'BF16' | 'I32' }[]) =>
    openSafetensors(
      bytesSource(
        await encodeSafetensors(
          list.map((s) => ({ ...s, data: new Uint8Array(s.shape.reduce((a, b) => a * b, 1) * 2) })),
        ),
      ),
      'model.safetensors',
    );

  it('accepts a complete file and reports unused tensors', async () => {
    const st = await fileOf([...specs, { name: 'lm_head.weight', shape: [32, 8], dtype: 'BF16' }]);
    expect(checkWeightsAgainstConfig(st, small)).toEqual(['lm_head.weight']);
  });

  it('names a missing tensor', async () => {
    const st = await fileOf(specs.filter((s) => s.name !== 'model.layers.0.self_attn.k_proj.bias'));
    expect(() => checkWeightsAgainstConfig(st, small)).toThrow(
      'model.safetensors: missing tensor "model.layers.0.self_attn.k_proj.bias" (expected shape [4])',
    );
  });

  it('names a tensor with the wrong shape', async () => {
    const st = await fileOf(
      specs.map((s) => (s.name === 'model.layers.0.mlp.up_proj.weight' ? { ...s, shape: [8, 16] } : s)),
    );
    expect(() => checkWeightsAgainstConfig(st, small)).toThrow(
      'model.safetensors: tensor "model.layers.0.mlp.up_proj.weight" has shape [8, 16], config implies [16, 8]',
    );
  });
});
