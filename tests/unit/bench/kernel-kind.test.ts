import { describe, expect, it } from 'vitest';
import { kernelKind, timingsByKind } from '../../../src/engine/kernel-profiler.ts';

describe('kernelKind', () => {
  it('drops layer index, matmul mode and vocabulary chunk from a dispatch site', () => {
    const kinds = Object.fromEntries(
      [
        'embed0',
        'embed12',
        'embedS1',
        'L0.norm1',
        'L23.norm2',
        'L3.gemv.qkv',
        'L3.gemm.qkv',
        'L3.rope',
        'L3.attn',
        'L3.gemv.o',
        'L3.gemv.gateUp',
        'L3.gemv.qkv+lora',
        'L3.swiglu',
        'L3.gemm.down',
        'L3.q_proj.loraA',
        'L3.down_proj.loraB',
        'head.norm',
        'lm0.gemv',
        'lm7.gemm',
        'sample',
        'logprob',
      ].map((s) => [s, kernelKind(s)]),
    );
    expect(kinds).toEqual({
      embed0: 'embed',
      embed12: 'embed',
      embedS1: 'embed',
      'L0.norm1': 'norm',
      'L23.norm2': 'norm',
      'L3.gemv.qkv': 'qkv',
      'L3.gemm.qkv': 'qkv',
      'L3.rope': 'rope',
      'L3.attn': 'attn',
      'L3.gemv.o': 'o',
      'L3.gemv.gateUp': 'gateUp',
      'L3.gemv.qkv+lora': 'qkv+lora',
      'L3.swiglu': 'swiglu',
      'L3.gemm.down': 'down',
      'L3.q_proj.loraA': 'lora',
      'L3.down_proj.loraB': 'lora',
      'head.norm': 'final norm',
      'lm0.gemv': 'lm head',
      'lm7.gemm': 'lm head',
      sample: 'sample',
      logprob: 'logprob',
    });
  });

  it('totals per kind, largest first, with shares of the summed time', () => {
    const kinds = timingsByKind([
      { site: 'L0.gemv.qkv', ns: 1_000_000 },
      { site: 'L1.gemv.qkv', ns: 2_000_000 },
      { site: 'sample', ns: 1_000_000 },
      { site: 'L0.rope', ns: 0 },
    ]);
    expect(kinds).toEqual([
      { kind: 'qkv', dispatches: 2, ms: 3, share: 0.75 },
      { kind: 'sample', dispatches: 1, ms: 1, share: 0.25 },
      { kind: 'rope', dispatches: 1, ms: 0, share: 0 },
    ]);
  });
});
