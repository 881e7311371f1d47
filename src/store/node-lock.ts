// One writer per run folder (Node): `run.lock` holds the writer's pid, host and start time, created with
// O_EXCL. A lock whose pid is dead on this host is stale (a crashed or SIGKILLed trainer) and is taken
// over; any other holder gets a RunLockedError that names it.
import { readFileSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { RunLockedError } from './errors.ts';
import type { NodeFs } from './node-fs.ts';

export const LOCK_FILE = 'run.lock';

export interface LockInfo {
  pid: number;
  hostname: string;
  since: string;
  /** Unique per acquisition, so release never removes someone else's lock. */
  token: string;
}

/**
 * A process that has exited but was not yet reaped (a zombie, state Z or X in /proc/PID/stat) still
 * answers kill(pid, 0), and it holds nothing. An orphan stays a zombie for as long as PID 1 does not reap
 * it, which in a container may be forever: the relayed `tabzero` child of a SIGKILLed CLI is one.
 */
function exitedUnreaped(pid: number): boolean {
  if (process.platform !== 'linux') return false;
  try {
    // The state follows the command name, which is in parentheses and may itself contain ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat[stat.lastIndexOf(')') + 2];
    return state === 'Z' || state === 'X';
  } catch {
    return false;
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    if ((err as { code?: string }).code !== 'EPERM') return false;
  }
  return !exitedUnreaped(pid);
}

async function readLock(file: string): Promise<{ text: string; info: LockInfo | null } | null> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return null;
    throw err;
  }
  try {
    const info = JSON.parse(text) as LockInfo;
    return typeof info.pid === 'number' && typeof info.hostname === 'string'
      ? { text, info }
      : { text, info: null };
  } catch {
    return { text, info: null };
  }
}

export function describeHolder(info: LockInfo): string {
  return `pid ${info.pid} on ${info.hostname} (since ${info.since})`;
}

export class NodeRunLock {
  private constructor(
    private readonly fs: NodeFs,
    readonly file: string,
    readonly info: LockInfo,
  ) {}

  static async acquire(fs: NodeFs, dir: string): Promise<NodeRunLock> {
    const file = path.join(dir, LOCK_FILE);
    const info: LockInfo = {
      pid: process.pid,
      hostname: os.hostname(),
      since: new Date().toISOString(),
      token: `${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`,
    };
    for (let attempt = 0; attempt < 3; attempt++) {
      if (await fs.createExclusive(file, JSON.stringify(info))) return new NodeRunLock(fs, file, info);
      const held = await readLock(file);
      if (!held) continue; // released between our two calls
      const h = held.info;
      if (h && h.hostname === info.hostname && !pidAlive(h.pid)) {
        // Stale. Move it aside atomically; if what we moved is not what we judged stale, another
        // process took it over in between: put it back and report that one.
        const aside = `${file}.stale-${info.token}`;
        try {
          await fs.rename(file, aside);
        } catch (err) {
          if ((err as { code?: string }).code === 'ENOENT') continue;
          throw err;
        }
        const moved = await readLock(aside);
        if (moved && moved.text !== held.text) {
          await fs.rename(aside, file);
          continue;
        }
        await fs.remove(aside);
        continue;
      }
      const who = h
        ? describeHolder(h)
        : `an unreadable lock file (${JSON.stringify(held.text.slice(0, 80))})`;
      const hint =
        h && h.hostname !== info.hostname
          ? ` If that machine no longer runs it, delete ${file}.`
          : ' Stop that process first (or wait for it to finish).';
      throw new RunLockedError(`Run ${dir} is already being written by ${who}.${hint}`, who);
    }
    throw new RunLockedError(`Run ${dir}: could not take ${file} (it keeps changing hands)`, 'unknown');
  }

  /** Removes the lock if it is still ours. */
  async release(): Promise<void> {
    const held = await readLock(this.file);
    if (held?.info?.token === this.info.token) await this.fs.remove(this.file);
  }
}
