// A tiny Qwen2 (byte-level vocabulary size) built from reference weights, loaded into the GPU engine
// with a trainer on a LoRA adapter: the shared setup of the training tests.
import type { GpuContext } from '../../src/engine/gpu.ts';
import { Engine, type EngineOptions } from '../../src/engine/engine.ts';
import { GpuLora } from '../../src/engine/lora-gpu.ts';
import type { RefWeights } from '../../src/engine/reference/qwen2.ts';
import { GpuTrainer, type TrainerOptions } from '../../src/engine/train.ts';
import { bytesSource } from '../../src/model/byte-source.ts';
import { encodeFloats } from '../../src/model/dtype.ts';
import { parseQwen2Config, type Qwen2Config } from '../../src/model/qwen2-config.ts';
import { openSafetensors } from '../../src/model/safetensors-read.ts';
import { encodeSafetensors } from '../../src/model/safetensors-write.ts';
import type { HostLora } from '../../src/model/lora.ts';

export function tinyConfig(overrides: Record<string, unknown> = {}): Qwen2Config {
  return parseQwen2Config({
    model_type: 'qwen2',
    hidden_size: 32,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    intermediate_size: 48,
    vocab_size: 272,
    rope_theta: 10000,
    rms_norm_eps: 1e-6,
    tie_word_embeddings: true,
    ...overrides,
  });
}

export async function engineFromRef(
  ctx: GpuContext,
  cfg: Qwen2Config,
  w: RefWeights,
  limits: Pick<EngineOptions, 'maxBatch' | 'maxSeqLen' | 'maxTokensPerPass' | 'loraDecode'>,
  precision: { dtype: 'f32' | 'f16'; kvDType: 'f32' | 'f16' } = { dtype: 'f32', kvDType: 'f32' },
): Promise<Engine> {
  const tensors = Object.entries(w).map(([name, data]) => ({
    name,
    dtype: 'F32' as const,
    shape: name.endsWith('.weight') && data.length !== cfg.hiddenSize ? shapeOf(cfg, name) : [data.length],
    data: encodeFloats(Float32Array.from(data), 'F32'),
  }));
  const bytes = await encodeSafetensors(tensors);
  const file = await openSafetensors(bytesSource(bytes), 'tiny.safetensors');
  return Engine.load(ctx, cfg, file, null, { ...limits, ...precision });
}

function shapeOf(cfg: Qwen2Config, name: string): number[] {
  const C = cfg.hiddenSize;
  const I = cfg.intermediateSize;
  const kv = cfg.numKeyValueHeads * cfg.headDim;
  if (name === 'model.embed_tokens.weight' || name === 'lm_head.weight') return [cfg.vocabSize, C];
  if (name.endsWith('q_proj.weight') || name.endsWith('o_proj.weight')) return [C, C];
  if (name.endsWith('k_proj.weight') || name.endsWith('v_proj.weight')) return [kv, C];
  if (name.endsWith('gate_proj.weight') || name.endsWith('up_proj.weight')) return [I, C];
  if (name.endsWith('down_proj.weight')) return [C, I];
  return [C];
}

export function makeTrainer(
  engine: Engine,
  cfg: Qwen2Config,
  lora: HostLora,
  opts: Partial<TrainerOptions> = {},
): GpuTrainer {
  const gpu = GpuLora.create(engine.ctx.device, engine.ledger, cfg, lora);
  return new GpuTrainer(engine, gpu, {
    lr: 1e-3,
    beta1: 0.9,
    beta2: 0.999,
    eps: 1e-8,
    weightDecay: 0,
    maxGradNorm: 1,
    warmupSteps: 0,
    ...opts,
  });
}

/** max |a − b| / max |b| over all modules' A and B gradients. */
export function gradRelErr(
  got: Record<string, { dA: ArrayLike<number>; dB: ArrayLike<number> }>,
  want: Record<string, { dA: ArrayLike<number>; dB: ArrayLike<number> }>,
): number {
  let worst = 0;
  for (const [mod, g] of Object.entries(want)) {
    for (const k of ['dA', 'dB'] as const) {
      let m = 0;
      let s = 0;
      for (let i = 0; i < g[k].length; i++) {
        m = Math.max(m, Math.abs(got[mod][k][i] - g[k][i]));
        s = Math.max(s, Math.abs(g[k][i]));
      }
      worst = Math.max(worst, m / s);
    }
  }
  return worst;
}
