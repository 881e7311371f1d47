// Diversity bonus (issue 10): an extra proposer reward for novel problem *structure*. A program's shape is
// its canonical print with every integer literal replaced by `n`, so `f(x) = x * 3 + 1` and
// `f(x) = x * 7 + 20` share the shape `f(x) = x * n + n`. Two measures: 'novel_shape' gives 1 when the
// shape is not yet in the task type's buffer (0 otherwise); 'distance' gives the smallest normalised
// token edit distance between the shape and the shapes of the prompt's K references (1 without refs).

const LITERAL = /\d+/g;
const SHAPE_TOKEN = /\/\/|[()+\-*%=,]|[a-z]+|n/g;

/** Canonical program (or closed expression) → shape with literals replaced by `n`. */
export function programShape(canonical: string): string {
  return canonical.replace(LITERAL, 'n');
}

export function shapeTokens(shape: string): string[] {
  return shape.match(SHAPE_TOKEN) ?? [];
}

/** Levenshtein distance between token lists. */
export function tokenEditDistance(a: readonly string[], b: readonly string[]): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length];
}

/** Edit distance divided by the longer token list: 0 = same shape, 1 = nothing in common. */
export function shapeDistance(a: string, b: string): number {
  const ta = shapeTokens(a);
  const tb = shapeTokens(b);
  const longest = Math.max(ta.length, tb.length);
  return longest === 0 ? 0 : tokenEditDistance(ta, tb) / longest;
}

export type DiversityMeasure = 'novel_shape' | 'distance';

/**
 * The unweighted bonus in [0, 1] of one proposed program. `bufferShapes`: shapes of the programs in the
 * type's buffer at the start of the step; `refPrograms`: the canonical programs shown as references.
 */
export function diversityBonus(
  measure: DiversityMeasure,
  program: string,
  bufferShapes: ReadonlySet<string>,
  refPrograms: readonly string[],
): number {
  const shape = programShape(program);
  if (measure === 'novel_shape') return bufferShapes.has(shape) ? 0 : 1;
  if (refPrograms.length === 0) return 1;
  return Math.min(...refPrograms.map((r) => shapeDistance(shape, programShape(r))));
}
