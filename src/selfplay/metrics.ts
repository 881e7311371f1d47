// Per-group metrics of one step (reward, validity, format, solve rates and advantage spread).
import type { GroupMetrics } from './types.ts';

export function groupMetrics(
  rewards: readonly number[],
  advantages: readonly number[],
  fmt: readonly boolean[],
  valid: readonly boolean[] | null,
  solve: readonly (number | null)[],
): GroupMetrics {
  const n = rewards.length;
  const mean = (xs: readonly number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);
  const advMean = mean(advantages);
  const solved = solve.filter((s): s is number => s !== null);
  return {
    count: n,
    meanReward: mean(rewards),
    validRate: valid ? valid.filter(Boolean).length / Math.max(1, n) : null,
    formatRate: fmt.filter(Boolean).length / Math.max(1, n),
    solveRate: solved.length ? mean(solved) : null,
    advMean,
    advStd: Math.sqrt(mean(advantages.map((a) => (a - advMean) ** 2))),
    zeroVariance: rewards.every((r) => r === rewards[0]),
  };
}
