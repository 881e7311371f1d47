// native-stderr.ts: native writes to fd 2 during the wrapped call reach stderr without exactly the lines
// the filter names, on a pipe and on a file opened for appending; a file opened for writing at an offset
// (`2> log`) and a socket are left alone. A child process runs the filter, so this test's own stderr is never swapped.
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const dir = mkdtempSync(join(tmpdir(), 'tabzero-native-stderr-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const WARNINGS = ['Uniform', 'Storage'].map(
  (kind) =>
    `Warning: maxDynamic${kind}BuffersPerPipelineLayout artificially reduced from 1000000 to 16 to fit dynamic offset allocation limit.`,
);

const script = join(dir, 'child.mts');
writeFileSync(
  script,
  `import { writeSync } from 'node:fs';
import { DAWN_LIMIT_WARNING, withNativeStderrFiltered } from ${JSON.stringify(resolve('src/engine/native-stderr.ts'))};
writeSync(2, 'before\\n');
const value = await withNativeStderrFiltered(DAWN_LIMIT_WARNING, async () => {
  // What Dawn does from C++: plain writes to file descriptor 2.
  writeSync(2, ${JSON.stringify(WARNINGS[0] + '\n')} + 'a driver line that stays\\n');
  process.stderr.write('a JS line that stays\\n');
  writeSync(2, ${JSON.stringify(WARNINGS[1] + '\n')});
  return 42;
});
writeSync(2, 'after ' + value + '\\n');
`,
);

/** Runs the child with its stderr on `stderr` (a file descriptor), or on a shell pipe (a FIFO). */
function runChild(stderr: 'shell pipe' | number): string {
  const node = JSON.stringify(process.execPath);
  const r =
    stderr === 'shell pipe'
      ? // Node's own 'pipe' stdio is a socket, which cannot be reopened: a shell pipe is what `| less` gives.
        spawnSync('sh', ['-c', `${node} --import tsx ${JSON.stringify(script)} 2>&1 >/dev/null | cat`], {
          encoding: 'utf8',
        })
      : spawnSync(process.execPath, ['--import', 'tsx', script], {
          stdio: ['ignore', 'ignore', stderr],
          encoding: 'utf8',
        });
  expect(r.status, r.stderr ?? '').toBe(0);
  return r.stdout ?? '';
}

const FILTERED = 'before\na driver line that stays\na JS line that stays\nafter 42\n';

describe('withNativeStderrFiltered', () => {
  it('drops exactly the named lines from a pipe and keeps everything else in order', () => {
    expect(runChild('shell pipe')).toBe(FILTERED);
  });

  it('filters a file opened for appending (2>> log) the same way', () => {
    const log = join(dir, 'append.log');
    writeFileSync(log, 'earlier\n');
    const fd = openSync(log, 'a');
    runChild(fd);
    closeSync(fd);
    expect(readFileSync(log, 'utf8')).toBe(`earlier\n${FILTERED}`);
  });

  it('leaves a file written at an offset (2> log) untouched: the warnings stay', () => {
    const log = join(dir, 'plain.log');
    const fd = openSync(log, 'w');
    runChild(fd);
    closeSync(fd);
    expect(readFileSync(log, 'utf8')).toBe(
      `before\n${WARNINGS[0]}\na driver line that stays\na JS line that stays\n${WARNINGS[1]}\nafter 42\n`,
    );
  });
});
