// Reference policy-gradient loss of spec 4.7 (and 4.11's k3 KL) on the logits of completion
// positions, with its gradient with respect to those logits.
//
//   ρ_t   = exp(logπ(y_t) − logπ_old(y_t))          (≡ 1 in value without old logprobs: on-policy)
//   ℓ_t   = max(−A·ρ_t, −A·clip(ρ_t, 1−ε, 1+ε))
//   k3_t  = exp(ref_t − logπ_t) − (ref_t − logπ_t) − 1
//   L     = Σ_s w_s Σ_t (ℓ_t + β k3_t − c_ent H_t) / N
//
// on the tempered distribution softmax(z / T) (TRL and veRL divide the logits by the sampling temperature;
// T = 1 is the plain one), with a per-sequence weight w_s (1 by default; GRPO's per-sequence length
// normalisation sets it, spec 4.11). N is the GLOBAL number of completion tokens of the whole batch: a micro-batch passes the global
// count, so summing micro-batch losses and gradients gives the full-batch token mean exactly.

import { allocLike, logSumExp, type FloatArray } from './ops.ts';

/** Per-sequence inputs of the loss (mirrors policy.ts's TrainSequence). */
export interface PgSequence {
  advantage: number;
  oldLogprobs?: ArrayLike<number>;
  refLogprobs?: ArrayLike<number>;
  /** Weight of every term of this sequence's tokens (default 1). */
  weight?: number;
}

export interface PgLossOptions {
  /** PPO clip ε (only matters with old logprobs). */
  clipEps: number;
  /** Entropy bonus coefficient; 0 skips the entropy term. */
  entropyCoef: number;
  /** k3 KL coefficient β; 0 skips it (then refLogprobs are not needed). */
  klBeta: number;
  /** Completion tokens of the whole batch (all micro-batches): the token-mean denominator. */
  totalTokens: number;
  /** Temperature T: every log-prob, the KL and the entropy use logits / T (default 1). */
  temperature?: number;
}

export interface PgLossResult {
  /** This (micro-)batch's share of L. */
  loss: number;
  /** dL/dlogits [n, V]. */
  dlogits: FloatArray;
  /** logπ(y_t) per token [n] (tempered). */
  logprobs: FloatArray;
  /** Σ_t H_t over these tokens (0 when entropyCoef = 0 and `wantEntropy` is false). */
  entropySum: number;
  /** Σ_t k3_t (0 when klBeta = 0). */
  klSum: number;
  /** Tokens whose ratio was clipped (the gradient is 0 there). */
  clipped: number;
}

/** ℓ and dℓ/dlogπ for one token (PyTorch's max: the unclipped branch wins ties). */
export function clippedPgToken(
  advantage: number,
  logprob: number,
  old: number | undefined,
  eps: number,
): [number, number, boolean] {
  if (old === undefined) return [-advantage, -advantage, false];
  const rho = Math.exp(logprob - old);
  const unclipped = -advantage * rho;
  const clipped = -advantage * Math.min(Math.max(rho, 1 - eps), 1 + eps);
  if (unclipped >= clipped) return [unclipped, -advantage * rho, false];
  return [clipped, 0, true];
}

/** k3 = exp(r) − r − 1 with r = ref − logπ, and dk3/dlogπ = 1 − exp(r). */
export function k3Token(logprob: number, ref: number): [number, number] {
  const r = ref - logprob;
  return [Math.exp(r) - r - 1, 1 - Math.exp(r)];
}

/**
 * Loss and dL/dlogits for n completion tokens. logits [n, V] (row t predicts targets[t]); token t
 * belongs to sequence s where tokenOffsets[s] ≤ t < tokenOffsets[s+1].
 */
export function policyGradientLoss(
  logits: FloatArray,
  targets: ArrayLike<number>,
  tokenOffsets: ArrayLike<number>,
  seqs: readonly PgSequence[],
  V: number,
  opts: PgLossOptions,
): PgLossResult {
  const n = targets.length;
  const N = opts.totalTokens;
  const dlogits = allocLike(logits, n * V);
  const logprobs = allocLike(logits, n);
  let loss = 0;
  let entropySum = 0;
  let klSum = 0;
  let clipped = 0;
  const invT = 1 / (opts.temperature ?? 1);
  const p = new Float64Array(V);
  const z = new Float64Array(V);
  for (let s = 0; s < seqs.length; s++) {
    const seq = seqs[s];
    const w = seq.weight ?? 1;
    for (let t = tokenOffsets[s]; t < tokenOffsets[s + 1]; t++) {
      const i = t - tokenOffsets[s];
      const row = t * V;
      for (let v = 0; v < V; v++) z[v] = logits[row + v] * invT;
      const lse = logSumExp(z, 0, V);
      let H = 0;
      for (let v = 0; v < V; v++) {
        const lp = z[v] - lse;
        p[v] = Math.exp(lp);
        H -= p[v] * lp;
      }
      const lp = z[targets[t]] - lse;
      logprobs[t] = lp;
      const [l, dl, wasClipped] = clippedPgToken(seq.advantage, lp, seq.oldLogprobs?.[i], opts.clipEps);
      if (wasClipped) clipped++;
      let g = dl;
      let tokenLoss = l;
      if (opts.klBeta !== 0) {
        if (!seq.refLogprobs) throw new Error('klBeta > 0 needs refLogprobs on every sequence');
        const [k3, dk3] = k3Token(lp, seq.refLogprobs[i]);
        klSum += k3;
        tokenLoss += opts.klBeta * k3;
        g += opts.klBeta * dk3;
      }
      if (opts.entropyCoef !== 0) {
        entropySum += H;
        tokenLoss -= opts.entropyCoef * H;
      }
      loss += w * tokenLoss;
      g = (w * g) / N;
      // With u = z / T: dlogπ(y)/du_v = 1[v = y] − p_v;  dH/du_v = −p_v (log p_v + H);  d/dz = d/du / T.
      const ce = (w * opts.entropyCoef) / N;
      for (let v = 0; v < V; v++) {
        let d = -g * p[v];
        if (ce !== 0) d += ce * p[v] * (z[v] - lse + H);
        dlogits[row + v] = d * invT;
      }
      dlogits[row + targets[t]] += g * invT;
    }
  }
  return { loss: loss / N, dlogits, logprobs, entropySum, klSum, clipped };
}
