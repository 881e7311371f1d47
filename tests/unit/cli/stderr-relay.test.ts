// The stderr relay's line filter (cli/stderr-relay.ts): drops exactly Dawn's two warning lines, whatever
// the chunking of the child's stream, and passes every other byte through in order.
import { describe, expect, it } from 'vitest';
import { LineFilter, relayWanted } from '../../../cli/stderr-relay.ts';
import { DAWN_LIMIT_WARNING } from '../../../src/engine/native-stderr.ts';

const W1 =
  'Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced from 1000000 to 16 to fit dynamic offset allocation limit.';
const W2 =
  'Warning: maxDynamicStorageBuffersPerPipelineLayout artificially reduced from 1000000 to 16 to fit dynamic offset allocation limit.';

function filtered(chunks: string[]): string {
  let out = '';
  const f = new LineFilter(DAWN_LIMIT_WARNING, (t) => (out += t));
  for (const c of chunks) f.push(c);
  f.end();
  return out;
}

describe('stderr relay', () => {
  const text = `loading\n${W1}\n${W2}\nstep 1 loss 2.5\n  ${W1} (quoted, kept)\nno newline at the end`;
  const kept = `loading\nstep 1 loss 2.5\n  ${W1} (quoted, kept)\nno newline at the end`;

  it('drops the two warnings and keeps everything else, in one chunk or byte by byte', () => {
    expect(filtered([text])).toBe(kept);
    expect(filtered([...text])).toBe(kept);
    expect(filtered([text.slice(0, 20), text.slice(20, 150), text.slice(150)])).toBe(kept);
  });

  it('is not wanted with --verbose, or inside the relayed child', () => {
    expect(relayWanted(['gpu', '--verbose'])).toBe(false);
    expect(relayWanted(['gpu'], { TABZERO_STDERR_RELAYED: '1' })).toBe(false);
  });
});
