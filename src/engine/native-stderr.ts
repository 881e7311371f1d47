// Dawn's two native limit warnings, filtered out of stderr (issue 19). When Dawn enumerates a Vulkan
// adapter whose dynamic-buffer limits exceed its own (lavapipe reports 1,000,000; RADV 500,000), it
// clamps them to 16 and prints "Warning: maxDynamic…BuffersPerPipelineLayout artificially reduced …"
// from C++ straight to file descriptor 2: no toggle, limit request or logging callback reaches it. So,
// around adapter acquisition only, fd 2 is swapped for a temporary file, and what was written there is
// replayed to the real stderr without exactly those lines. Node-only (Linux's /proc reopens stderr).
//
// The swap needs a stderr that can be reopened as itself without changing what a write does: a terminal,
// a pipe, or a file opened for appending (`2>> log`). A file opened by `2> log` or `> log 2>&1` writes at
// an offset it shares with stdout, which a reopened descriptor would not share, so there, on sockets (Node's
// child_process 'pipe' is one; a shell's `|` is a pipe) and where /proc is missing, nothing is swapped and
// the warnings stay: `tabzero` then relays its stderr through a pipe instead (cli/stderr-relay.ts).
import { closeSync, fstatSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Exactly Dawn's two clamp warnings (src/dawn/native/Limits.cpp). */
export const DAWN_LIMIT_WARNING =
  /^Warning: maxDynamic(Uniform|Storage)BuffersPerPipelineLayout artificially reduced from \d+ to \d+ to fit dynamic offset allocation limit\.$/;

const STDERR = 2;
let swapped = false;

const O_APPEND = 0o2000;

/** Whether fd 2 is open for appending (`2>> log`): then every write goes to the end, whatever the offset. */
function appending(): boolean {
  const flags = /^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${STDERR}`, 'utf8'))?.[1];
  return flags !== undefined && (parseInt(flags, 8) & O_APPEND) !== 0;
}

/**
 * Whether fd 2 can be swapped out and back without changing what its writes do: a terminal, a pipe, or
 * a file opened for appending.
 */
export function stderrSwappable(): boolean {
  if (process.platform !== 'linux') return false;
  try {
    const s = fstatSync(STDERR);
    return s.isCharacterDevice() || s.isFIFO() || (s.isFile() && appending());
  } catch {
    return false;
  }
}

/** Reopens what `fd` points at (a new descriptor of the same terminal or pipe), or null. */
function reopen(fd: number): number | null {
  try {
    return openSync(`/proc/self/fd/${fd}`, 'a');
  } catch {
    return null;
  }
}

/**
 * Runs `fn` with native writes to stderr captured, then writes them to stderr without the lines that
 * `drop` matches. Anything JS writes to process.stderr meanwhile is captured and replayed the same way.
 */
export async function withNativeStderrFiltered<T>(drop: RegExp, fn: () => Promise<T>): Promise<T> {
  // One swap at a time: a second acquisition meanwhile runs inside the first's capture.
  if (swapped || !stderrSwappable()) return fn();
  const saved = reopen(STDERR);
  if (saved === null) return fn();
  const capturePath = join(tmpdir(), `tabzero-stderr-${process.pid}-${Date.now()}`);
  closeSync(STDERR);
  // The lowest free descriptor is 2 — unless another thread took it in between: then put stderr back.
  const capture = openSync(capturePath, 'w+');
  if (capture !== STDERR) {
    closeSync(capture);
    rmSync(capturePath, { force: true });
    restore(saved);
    return fn();
  }
  swapped = true;
  try {
    return await fn();
  } finally {
    swapped = false;
    closeSync(STDERR);
    restore(saved);
    const text = readFileSync(capturePath, 'utf8');
    rmSync(capturePath, { force: true });
    const kept = text.split('\n').filter((line) => !drop.test(line));
    const out = kept.join('\n');
    if (out.trim() !== '') writeSync(STDERR, out);
  }
}

/** Puts stderr back on fd 2 from its reopened copy. */
function restore(saved: number): void {
  const fd = reopen(saved);
  closeSync(saved);
  if (fd !== STDERR && fd !== null) closeSync(fd);
}
