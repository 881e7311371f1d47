// Dawn's two native limit warnings are dropped from the CLI's stderr; everything else passes through
// as it comes, split across chunks anywhere, and a status line redrawn with \r is never held back.
import { describe, expect, it } from 'vitest';
import { DawnWarningFilter } from '../../../cli/stderr-filter.ts';

const WARNINGS =
  'Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced from 1000000 to 16 to fit dynamic offset allocation limit.\n' +
  'Warning: maxDynamicStorageBuffersPerPipelineLayout artificially reduced from 1000000 to 16 to fit dynamic offset allocation limit.\n';

function run(chunks: string[]): string[] {
  const f = new DawnWarningFilter();
  const out = chunks.map((c) => f.push(c));
  out.push(f.flush());
  return out;
}

describe('the Dawn warning filter', () => {
  it('drops exactly the two warnings, in any chunking', () => {
    const text = `loading weights\n${WARNINGS}Warning: something else\nstep 1/3 propose\n`;
    const expected = 'loading weights\nWarning: something else\nstep 1/3 propose\n';
    expect(run([text]).join('')).toBe(expected);
    for (const size of [1, 3, 17, 64]) {
      const chunks = Array.from({ length: Math.ceil(text.length / size) }, (_, i) =>
        text.slice(i * size, (i + 1) * size),
      );
      expect(run(chunks).join(''), `chunks of ${size}`).toBe(expected);
    }
  });

  it('keeps a warning-like line that is not one', () => {
    const line = 'Warning: maxDynamicUniformBuffersPerPipelineLayout is low on this adapter\n';
    expect(run([line]).join('')).toBe(line);
  });

  it('passes a status line through at once, before its line ends', () => {
    const out = run(['\r\x1b[Kstep 1/3 solve', ': estimation', '\r\x1b[Kstep 1/3 update']);
    expect(out.slice(0, 3)).toEqual(['\r\x1b[Kstep 1/3 solve', ': estimation', '\r\x1b[Kstep 1/3 update']);
  });

  it('gives back what it held when the stream ends mid-line', () => {
    expect(run(['Warning: maxDyn'])).toEqual(['', 'Warning: maxDyn']);
  });
});
