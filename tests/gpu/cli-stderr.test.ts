// `tabzero` prints none of Dawn's native limit warnings on stderr unless --verbose (issue 19): on this
// machine's lavapipe Dawn prints both when it enumerates the adapter, so --verbose shows they are there to
// filter. stderr is a shell pipe, as in `tabzero gpu 2>&1 | less`.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const WARNING = /artificially reduced from \d+ to \d+ to fit dynamic offset allocation limit/g;

function stderrOf(args: string): { code: number | null; stderr: string } {
  const r = spawnSync(
    'sh',
    ['-c', `${JSON.stringify(process.execPath)} cli/bin.js ${args} 2>&1 >/dev/null | cat`],
    {
      encoding: 'utf8',
    },
  );
  return { code: r.status, stderr: r.stdout };
}

describe('tabzero stderr', () => {
  it("has no Dawn limit warning by default, and Dawn's two with --verbose", () => {
    const quiet = stderrOf('gpu');
    expect(quiet.code).toBe(0);
    expect(quiet.stderr.match(WARNING)).toBeNull();
    const verbose = stderrOf('gpu --verbose');
    expect(verbose.stderr.match(WARNING)).toHaveLength(2);
  });
});
