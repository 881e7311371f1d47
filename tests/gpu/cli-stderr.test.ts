// `tabzero` prints none of Dawn's native limit warnings on stderr unless --verbose (issue 19): on this
// machine's lavapipe Dawn prints both when it enumerates the adapter, so --verbose shows they are there to
// filter. stderr is a shell pipe (`tabzero gpu 2>&1 | less`: fd 2 is swapped around the adapter), a file
// shared with stdout (`> log 2>&1`) or a socket (a Node parent's 'pipe'): those two are relayed.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

  it('has none in a file that stdout shares (`> log 2>&1`), stdout intact, the exit code kept', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tabzero-stderr-'));
    try {
      const log = join(dir, 'log');
      const sh = (args: string) =>
        spawnSync('sh', ['-c', `${JSON.stringify(process.execPath)} cli/bin.js ${args} > ${log} 2>&1`])
          .status;
      expect(sh('gpu')).toBe(0);
      const text = readFileSync(log, 'utf8');
      expect(text.match(WARNING)).toBeNull();
      expect(text).toMatch(/"vendor"/);
      expect(sh('gpu --verbose')).toBe(0);
      expect(readFileSync(log, 'utf8').match(WARNING)).toHaveLength(2);
      expect(sh('no-such-command')).toBe(2);
      expect(readFileSync(log, 'utf8')).toMatch(/unknown command 'no-such-command'/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('has none on a socket (a Node parent reading its stderr)', () => {
    const r = spawnSync(process.execPath, ['cli/bin.js', 'gpu'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stderr.match(WARNING)).toBeNull();
    expect(r.stdout).toMatch(/"vendor"/);
  });
});
