// Task buffers (spec 4.8): canonical dedup (DEVIATION dedupBuffer), a cap with FIFO eviction of the
// oldest non-seed entry (DEVIATION) or AZR's keep-oldest, reference sampling and max_new solver sampling.
import type { RunConfig } from '../config.ts';
import type { Rng } from '../random.ts';
import { TASK_TYPES, type TaskEntry, type TaskType } from './types.ts';

export type BufferOptions = Pick<RunConfig, 'maxBuffer' | 'bufferEviction' | 'dedupBuffer'>;

export class TaskBuffer {
  private items: TaskEntry[] = [];
  /** Multiset of canonical keys (duplicates exist when dedup is off). */
  private keys = new Map<string, number>();

  constructor(
    readonly type: TaskType,
    private readonly opts: BufferOptions,
  ) {}

  get size(): number {
    return this.items.length;
  }

  get entries(): readonly TaskEntry[] {
    return this.items;
  }

  has(entry: Pick<TaskEntry, 'type' | 'program' | 'inputs'>): boolean {
    return this.keys.has(taskKey(entry));
  }

  private addKey(k: string, delta: number): void {
    const n = (this.keys.get(k) ?? 0) + delta;
    if (n <= 0) this.keys.delete(k);
    else this.keys.set(k, n);
  }

  /** Insert; returns false when deduplicated away or dropped because the buffer is full. */
  insert(entry: TaskEntry, opts: { dedup?: boolean } = {}): boolean {
    const key = taskKey(entry);
    if ((opts.dedup ?? this.opts.dedupBuffer) && this.keys.has(key)) return false;
    if (this.items.length >= this.opts.maxBuffer) {
      if (this.opts.bufferEviction === 'keep_oldest') return false;
      const victim = this.items.findIndex((e) => !e.seed);
      if (victim < 0) return false;
      this.addKey(taskKey(this.items[victim]), -1);
      this.items.splice(victim, 1);
    }
    this.items.push(entry);
    this.addKey(key, 1);
    return true;
  }

  /** Keep the first n entries (seeding truncation). */
  truncate(n: number): void {
    for (const e of this.items.slice(n)) this.addKey(taskKey(e), -1);
    this.items.length = Math.min(this.items.length, n);
  }

  /** K references, uniform without replacement (K = min(K, size)). */
  sampleRefs(rng: Rng, k: number): TaskEntry[] {
    return rng.sample(this.items, k);
  }

  /**
   * B solver tasks at step t. max_new: entries with step ≥ t − W first (uniform without replacement), then
   * fill uniformly without replacement from the rest; uniform: from the whole buffer. Fewer than B
   * entries → with replacement.
   */
  sampleSolver(rng: Rng, t: number, b: number, strategy: 'max_new' | 'uniform', window: number): TaskEntry[] {
    const n = this.items.length;
    if (n === 0) return [];
    if (n < b) return Array.from({ length: b }, () => this.items[Math.floor(rng.next() * n)]);
    if (strategy === 'uniform') return rng.sample(this.items, b);
    const recent = this.items.filter((e) => e.step >= t - window);
    const taken = rng.sample(recent, b);
    if (taken.length === b) return taken;
    const chosen = new Set(taken);
    const rest = this.items.filter((e) => !chosen.has(e));
    return taken.concat(rng.sample(rest, b - taken.length));
  }

  toJSON(): TaskEntry[] {
    return this.items;
  }

  static fromJSON(type: TaskType, opts: BufferOptions, items: TaskEntry[]): TaskBuffer {
    const buf = new TaskBuffer(type, opts);
    for (const e of items) {
      buf.items.push(e);
      buf.addKey(taskKey(e), 1);
    }
    return buf;
  }
}

/** The task types a config's steps use: raw proposer prompts make closed-expression deduction tasks only. */
export function activeTaskTypes(c: { proposerPrompts: 'chat' | 'raw' }): readonly TaskType[] {
  return c.proposerPrompts === 'raw' ? ['ded'] : TASK_TYPES;
}

/** Canonical dedup key: program + input(s) (spec 4.3 dedupBuffer). */
export function taskKey(t: Pick<TaskEntry, 'type' | 'program' | 'inputs'>): string {
  return `${t.program}|${t.inputs.map((i) => i.join(',')).join(';')}`;
}
