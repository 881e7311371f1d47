// Dawn's two limit warnings, kept out of stderr where fd 2 cannot be swapped (src/engine/native-stderr.ts):
// a file opened by `> log 2>&1` or `2> log` (its offset is shared with stdout, and Node cannot dup2), or a
// socket (a supervisor's pipe, Node's child_process 'pipe'). There `tabzero` runs itself as a child whose
// stderr is a pipe to this process, which passes every line through except exactly those two. stdin and
// stdout are the child's own, so output, prompts and exit codes are as without the relay.
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { DAWN_LIMIT_WARNING, stderrSwappable } from '../src/engine/native-stderr.ts';

/** Set in the relayed child: its stderr is already filtered by the parent. */
const RELAYED = 'TABZERO_STDERR_RELAYED';

/** Whether this process should relay: filtering is on (no --verbose), fd 2 cannot be swapped, not a child. */
export function relayWanted(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): boolean {
  return (
    process.platform === 'linux' &&
    !argv.includes('--verbose') &&
    env[RELAYED] === undefined &&
    !stderrSwappable()
  );
}

/** Splits a byte stream into lines and writes the ones `drop` does not match (with their newline). */
export class LineFilter {
  private rest = '';

  constructor(
    private readonly drop: RegExp,
    private readonly write: (text: string) => void,
  ) {}

  push(chunk: string): void {
    const lines = (this.rest + chunk).split('\n');
    this.rest = lines.pop() ?? '';
    const kept = lines.filter((l) => !this.drop.test(l));
    if (kept.length > 0) this.write(kept.map((l) => l + '\n').join(''));
  }

  end(): void {
    if (this.rest !== '' && !this.drop.test(this.rest)) this.write(this.rest);
    this.rest = '';
  }
}

/**
 * Runs `script argv` as a child with its stderr relayed through the filter; resolves to the exit code to
 * leave with (128 + the signal's number when the child was killed by one).
 */
export function relayStderr(script: string, argv: readonly string[]): Promise<number> {
  // A terminal's Ctrl-C reaches its whole foreground process group. When stdin is that terminal the
  // child must stay in this group (to read it), so it gets Ctrl-C itself and this process only waits;
  // otherwise the child gets a group of its own and every signal sent here is passed on exactly once
  // (a second SIGINT would stop a run without its checkpoint).
  const ownGroup = !process.stdin.isTTY;
  const child = spawn(process.execPath, [...process.execArgv, script, ...argv], {
    // The IPC channel tells the child when this process dies (below, dieWithRelay).
    stdio: ['inherit', 'inherit', 'pipe', 'ipc'],
    env: { ...process.env, [RELAYED]: '1' },
    detached: ownGroup,
  });
  const filter = new LineFilter(DAWN_LIMIT_WARNING, (t) => process.stderr.write(t));
  const stderr = child.stderr;
  if (!stderr) throw new Error('tabzero: the relayed child has no stderr pipe');
  stderr.setEncoding('utf8');
  stderr.on('data', (c: string) => filter.push(c));
  const forward = (sig: NodeJS.Signals) => child.kill(sig);
  process.on('SIGINT', ownGroup ? forward : () => undefined);
  for (const sig of ['SIGTERM', 'SIGHUP'] as const) process.on(sig, forward);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      filter.end();
      resolve(code ?? 128 + (signal ? constants.signals[signal] : 0));
    });
  });
}

/**
 * In the relayed child: when the relaying parent dies (SIGKILLed by a supervisor or a test), die the same
 * way at once, so that killing `tabzero` kills the run — its stored state is then exactly a killed run's.
 */
export function dieWithRelay(env: NodeJS.ProcessEnv = process.env): void {
  if (env[RELAYED] === undefined || !process.channel) return;
  process.on('disconnect', () => process.kill(process.pid, 'SIGKILL'));
  process.channel.unref();
}
