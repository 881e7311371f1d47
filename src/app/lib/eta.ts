// Time left in a run, from the wall time of recent steps (recent ones count: the first steps include
// compilation and warm-up, and a hidden tab slows some steps down).

/** Mean of the last `window` step times in ms, or null with no steps yet. */
export function recentMeanMs(stepMs: readonly number[], window = 5): number | null {
  const recent = stepMs.filter((t) => Number.isFinite(t) && t > 0).slice(-window);
  return recent.length ? recent.reduce((a, b) => a + b, 0) / recent.length : null;
}

/** Seconds until `totalSteps`, or null when unknown. */
export function runEtaSeconds(
  stepMs: readonly number[],
  step: number,
  totalSteps: number,
  window = 5,
): number | null {
  const mean = recentMeanMs(stepMs, window);
  if (mean === null) return null;
  return (Math.max(0, totalSteps - step) * mean) / 1000;
}
