// Separate proposer and solver adapters (config.separateAdapters, issue 10): two LoRA adapters of the
// same shape on one engine, each with its own engine GpuTrainer (gradient buffers + AdamW). The forward
// holds one adapter at a time; `use(role)` installs the role's adapter before each generate call,
// logprob pass and training pass (Engine.setLora also clears the forward's cached bind groups, which
// bind the adapter's buffers by call site).
import type { Engine } from '../engine/engine.ts';
import type { GpuTrainer as EngineTrainer } from '../engine/train.ts';
import type { Policy, StepStats, TrainBatch, TrainSequence } from '../policy.ts';

export type AdapterRole = 'propose' | 'solve';
export const ADAPTER_ROLES: readonly AdapterRole[] = ['propose', 'solve'];

export type AdapterTrainers = Record<AdapterRole, EngineTrainer>;

/** Installs the role's adapter in the forward unless it is already the one installed. */
export function useAdapter(engine: Engine, trainers: AdapterTrainers, role: AdapterRole): void {
  const lora = trainers[role].lora;
  if (!lora) throw new Error('separate adapters need LoRA trainers');
  if (engine.forward.lora !== lora.weights) engine.setLora(lora.weights);
}

/** The batch's sequences split by role (default 'solve'), with each one's index in the batch. */
function splitByRole(
  seqs: readonly TrainSequence[],
): Record<AdapterRole, { seqs: TrainSequence[]; at: number[] }> {
  const out = { propose: { seqs: [], at: [] }, solve: { seqs: [], at: [] } } as Record<
    AdapterRole,
    { seqs: TrainSequence[]; at: number[] }
  >;
  seqs.forEach((s, i) => {
    const part = out[s.role ?? 'solve'];
    part.seqs.push(s);
    part.at.push(i);
  });
  return out;
}

const completionTokens = (seqs: readonly TrainSequence[]) =>
  seqs.reduce((n, s) => n + s.completionIds.length, 0);

/**
 * The policy over two adapters. generate samples with `opts.role`'s adapter (default solve); logprobs
 * and step route each sequence by its `role` (default solve).
 *
 * step: each adapter's trainer computes the gradient of its own sequences with the loss normalised by
 * the completion-token count of the WHOLE batch (spec 4.7 token mean), so the two gradients together
 * are the gradient of the batch's loss. An adapter without completion tokens in the batch does not step
 * (no AdamW update, its step count unchanged). Grad-norm clipping is per adapter: each adapter's
 * gradient is clipped to maxGradNorm on its own (they are separate parameter sets with separate
 * optimizers). The stats combine both: loss and tokens summed, gradNorm = √(Σ norm²) (the norm of the
 * concatenated gradient), clipFactor the smaller of the two, entropy the token-weighted mean, times
 * summed per phase.
 */
export function separateAdapterPolicy(engine: Engine, trainers: AdapterTrainers): Policy {
  return {
    generate: (prompts, opts) => {
      useAdapter(engine, trainers, opts.role ?? 'solve');
      return engine.generate(prompts, opts);
    },
    logprobs: async (batch) => {
      const out: Float32Array[] = new Array<Float32Array>(batch.sequences.length);
      const parts = splitByRole(batch.sequences);
      for (const role of ADAPTER_ROLES) {
        const { seqs, at } = parts[role];
        if (seqs.length === 0) continue;
        useAdapter(engine, trainers, role);
        const lps = await engine.logprobs({ ...batch, sequences: seqs });
        lps.forEach((lp, k) => (out[at[k]] = lp));
      }
      return out;
    },
    step: async (batch) => {
      const totalTokens = completionTokens(batch.sequences);
      const parts = splitByRole(batch.sequences);
      const stats: StepStats[] = [];
      for (const role of ADAPTER_ROLES) {
        const { seqs } = parts[role];
        if (completionTokens(seqs) === 0) continue;
        useAdapter(engine, trainers, role);
        const { logprobs: _lp, ...s } = await trainers[role].step(
          { ...batch, sequences: seqs },
          { totalTokens },
        );
        stats.push(s);
      }
      return combineStats(stats, batch);
    },
  };
}

function combineStats(stats: readonly StepStats[], batch: TrainBatch): StepStats {
  const tokens = stats.reduce((n, s) => n + s.tokens, 0);
  const timeMs: Record<string, number> = {};
  for (const s of stats) for (const [k, v] of Object.entries(s.timeMs)) timeMs[k] = (timeMs[k] ?? 0) + v;
  return {
    loss: stats.reduce((n, s) => n + s.loss, 0),
    gradNorm: Math.sqrt(stats.reduce((n, s) => n + s.gradNorm * s.gradNorm, 0)),
    clipFactor: stats.reduce((f, s) => Math.min(f, s.clipFactor), 1),
    tokens,
    entropy:
      batch.entropyCoef !== 0 && tokens ? stats.reduce((n, s) => n + s.entropy * s.tokens, 0) / tokens : NaN,
    ...(batch.klBeta !== 0 && tokens
      ? { kl: stats.reduce((n, s) => n + (s.kl ?? 0) * s.tokens, 0) / tokens }
      : {}),
    timeMs,
  };
}
