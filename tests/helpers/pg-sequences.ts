// The two-sequence policy-gradient batch of the loss oracles (reference FD test and the LM-loss kernel
// test): advantages 1.3 and −0.7, old log-probs shifted from the current ones (some far enough for the
// clip to bind), reference log-probs below them, and optional per-sequence weights.
export interface PgTestSequence {
  advantage: number;
  oldLogprobs: number[];
  refLogprobs: number[] | undefined;
  weight: number | undefined;
}

export function pgTestSequences(
  lp0: ArrayLike<number>,
  tokenOffsets: readonly number[],
  opts: { shift: readonly number[]; withRef: boolean; weights?: readonly [number, number] },
): PgTestSequence[] {
  return [0, 1].map((s) => {
    const idx = Array.from({ length: tokenOffsets[s + 1] - tokenOffsets[s] }, (_, i) => tokenOffsets[s] + i);
    return {
      advantage: s === 0 ? 1.3 : -0.7,
      oldLogprobs: idx.map((t) => lp0[t] + opts.shift[t]),
      refLogprobs: opts.withRef ? idx.map((t, i) => lp0[t] - 0.3 + 0.2 * i) : undefined,
      weight: opts.weights?.[s],
    };
  });
}
