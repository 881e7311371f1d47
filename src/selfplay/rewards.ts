// Rewards (spec 4.6) and advantages: TRR++ with pluggable baseline grouping (spec 4.7), GRPO group
// advantages and the k3 KL (spec 2, 4.11).
import type { Role, TaskType } from './types.ts';

/** R_solve = fmt ? (correct ? 1 : −0.5) : −1. */
export function solverReward(fmt: boolean, correct: boolean): number {
  if (!fmt) return -1;
  return correct ? 1 : -0.5;
}

/** Fraction of estimation rollouts that were correct (format ignored); `null` marks dropped samples. */
export function learnability(correct: readonly (boolean | null)[]): number | null {
  const counted = correct.filter((c): c is boolean => c !== null);
  if (counted.length === 0) return null;
  return counted.filter(Boolean).length / counted.length;
}

/** R_propose: −1 if invalid or badly formatted; 1 − s for 0 < s < 1; EXTREME otherwise. */
export function proposerReward(valid: boolean, fmt: boolean, s: number | null, extreme: number): number {
  if (!valid || !fmt) return -1;
  if (s !== null && s > 0 && s < 1) return 1 - s;
  return extreme;
}

/** Binary learnability (issue 10): −1 if invalid or badly formatted; 1 for 0 < s < 1; 0 otherwise. */
export function binaryProposerReward(valid: boolean, fmt: boolean, s: number | null): number {
  if (!valid || !fmt) return -1;
  return s !== null && s > 0 && s < 1 ? 1 : 0;
}

/**
 * The journal's "solver improvement" (issue 10): −1 if invalid or badly formatted; otherwise the change in
 * the solver's accuracy on the task, s_after − s_before, across one policy update (0 when either is missing).
 */
export function improvementProposerReward(
  valid: boolean,
  fmt: boolean,
  before: number | null,
  after: number | null,
): number {
  if (!valid || !fmt) return -1;
  return before === null || after === null ? 0 : after - before;
}

const TRRPP_EPS = 1e-8;

/**
 * TRR++ within one baseline group. 'sequence': (R − μ)/sqrt(σ² + 1e-8) with the unbiased per-sequence σ²;
 * 'token': μ, σ² weighted by response lengths (veRL parity). A constant group, or one with fewer than two
 * samples (tokens), gives zeros.
 */
export function trrppAdvantages(
  rewards: readonly number[],
  norm: 'sequence' | 'token' = 'sequence',
  lengths?: readonly number[],
): number[] {
  const m = rewards.length;
  const w = norm === 'token' ? (lengths ?? rewards.map(() => 1)) : rewards.map(() => 1);
  const total = w.reduce((a, b) => a + b, 0);
  if (m < 2 || total <= 1) return rewards.map(() => 0);
  const mu = rewards.reduce((acc, r, j) => acc + w[j] * r, 0) / total;
  const ss = rewards.reduce((acc, r, j) => acc + w[j] * (r - mu) ** 2, 0);
  const variance = ss / (total - 1);
  if (variance === 0) return rewards.map(() => 0);
  const sd = Math.sqrt(variance + TRRPP_EPS);
  return rewards.map((r) => (r - mu) / sd);
}

export type DifficultyTier = 'easy' | 'medium' | 'hard' | 'unrated';

/** Tier of a task by its estimated solve rate s: hard s < hardBelow, easy s > easyAbove; null → unrated. */
export function difficultyTier(
  s: number | null | undefined,
  bounds: { tierHardBelow: number; tierEasyAbove: number },
): DifficultyTier {
  if (s === null || s === undefined) return 'unrated';
  if (s < bounds.tierHardBelow) return 'hard';
  if (s > bounds.tierEasyAbove) return 'easy';
  return 'medium';
}

export interface ScoredSequence {
  type: TaskType;
  role: Role;
  reward: number;
  /** Response tokens including the stop token. */
  length: number;
  /** Difficulty tier of the sequence's task (for tiered baselines; absent = unrated). */
  tier?: DifficultyTier;
}

/** Which baseline a sequence shares: a key per group. New groupings are new entries here. */
export type BaselineGrouping = (s: Pick<ScoredSequence, 'type' | 'role' | 'tier'>) => string;

export const BASELINE_GROUPINGS: Record<6 | 2 | 1, BaselineGrouping> = {
  6: (s) => `${s.type}:${s.role}`,
  2: (s) => s.role,
  1: () => 'all',
};

/** A grouping further split by difficulty tier (baselines 2 + tiers = the journal's role × tier). */
export function withTiers(base: BaselineGrouping): BaselineGrouping {
  return (s) => `${base(s)}|${s.tier ?? 'unrated'}`;
}

/**
 * Tiered baselines: a sequence with a tier is normalised within (base group × tier); an unrated one
 * (an invalid or unformatted proposal, a seed task never estimated) against its whole base group, so
 * that invalid proposals keep their negative advantage instead of forming a constant group of −1.
 */
export function tieredAdvantages(
  seqs: readonly ScoredSequence[],
  base: BaselineGrouping,
  norm: 'sequence' | 'token',
): number[] {
  const whole = groupedAdvantages(seqs, base, norm);
  const tiered = groupedAdvantages(seqs, withTiers(base), norm);
  return seqs.map((s, k) => (s.tier === undefined || s.tier === 'unrated' ? whole[k] : tiered[k]));
}

/** The advantages of one step's sequences under a config's baseline options. */
export function stepAdvantages(
  seqs: readonly ScoredSequence[],
  c: { baselines: 6 | 2 | 1; baselineTiers: boolean; advNorm: 'sequence' | 'token' },
): number[] {
  const base = BASELINE_GROUPINGS[c.baselines];
  return c.baselineTiers ? tieredAdvantages(seqs, base, c.advNorm) : groupedAdvantages(seqs, base, c.advNorm);
}

/** TRR++ advantages for a whole step, each sequence normalised within its baseline group. */
export function groupedAdvantages(
  seqs: readonly ScoredSequence[],
  grouping: BaselineGrouping,
  norm: 'sequence' | 'token',
): number[] {
  const groups = new Map<string, number[]>();
  seqs.forEach((s, k) => {
    const key = grouping(s);
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key)!.push(k);
  });
  const out = new Array<number>(seqs.length).fill(0);
  for (const idx of groups.values()) {
    const adv = trrppAdvantages(
      idx.map((k) => seqs[k].reward),
      norm,
      idx.map((k) => seqs[k].length),
    );
    idx.forEach((k, j) => (out[k] = adv[j]));
  }
  return out;
}

const GRPO_EPS = 1e-4;

function meanStd(xs: readonly number[]): { mean: number; std: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const std = xs.length < 2 ? 0 : Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (xs.length - 1));
  return { mean, std };
}

/**
 * GRPO advantages for consecutive groups of G rewards (TRL): Â = (r − mean_G) / (std + 1e-4), std unbiased;
 * 'batch' takes the std over the whole batch, 'none' does not divide.
 */
export function grpoAdvantages(
  rewards: readonly number[],
  groupSize: number,
  scale: 'group' | 'batch' | 'none' = 'group',
): number[] {
  const batchStd = meanStd(rewards).std;
  const out: number[] = [];
  for (let g = 0; g < rewards.length; g += groupSize) {
    const group = rewards.slice(g, g + groupSize);
    const { mean, std } = meanStd(group);
    const denom = scale === 'group' ? std + GRPO_EPS : scale === 'batch' ? batchStd + GRPO_EPS : 1;
    for (const r of group) out.push((r - mean) / denom);
  }
  return out;
}
