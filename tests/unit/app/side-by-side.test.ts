import { describe, expect, it } from 'vitest';
import { benchPromptIds, sharedPrefix } from '../../../src/app/lib/side-by-side.ts';

describe('the bench page helpers', () => {
  it('draws the same ordinary-token prompt for a seed, another for another seed', () => {
    const a = benchPromptIds(50, 151_936, 1);
    expect(a).toEqual(benchPromptIds(50, 151_936, 1));
    expect(a).not.toEqual(benchPromptIds(50, 151_936, 2));
    expect(a.every((id) => Number.isInteger(id) && id >= 0 && id < 32_000)).toBe(true);
    expect(benchPromptIds(200, 300, 1).every((id) => id < 300)).toBe(true);
  });

  it('counts the leading tokens two runtimes share', () => {
    expect(sharedPrefix([1, 2, 3], [1, 2, 3])).toBe(3);
    expect(sharedPrefix([1, 2, 3], [1, 5, 3])).toBe(1);
    expect(sharedPrefix([], [1])).toBe(0);
    expect(sharedPrefix([4, 4], [4, 4, 4])).toBe(2);
  });
});
