// Spec 6.7: max_new sampling takes recent entries first, the FIFO cap never evicts seeds, dedup uses
// canonical strings.
import { describe, expect, it } from 'vitest';
import { TaskBuffer, type BufferOptions } from '../../../src/selfplay/buffers.ts';
import { Rng } from '../../../src/random.ts';
import type { TaskEntry } from '../../../src/selfplay/types.ts';

const opts: BufferOptions = { maxBuffer: 100, bufferEviction: 'fifo_non_seed', dedupBuffer: true };

function entry(k: number, step: number, seed = false, program = `f(x) = x + ${k}`): TaskEntry {
  return {
    id: `ded-${k}`,
    type: 'ded',
    program,
    arity: 1,
    inputs: [[k]],
    outputs: [2 * k],
    closed: [`${k} + ${k}`],
    binaryOps: 1,
    step,
    seed,
    origin: 'model',
  };
}

describe('TaskBuffer', () => {
  it('max_new takes every recent entry first, then fills from the rest', () => {
    const buf = new TaskBuffer('ded', opts);
    for (let k = 0; k < 20; k++) buf.insert(entry(k, k < 17 ? 1 : 5));
    const rng = new Rng(3);
    for (let trial = 0; trial < 20; trial++) {
      const got = buf.sampleSolver(rng, 6, 5, 'max_new', 1);
      expect(got).toHaveLength(5);
      const recent = got.filter((e) => e.step === 5);
      expect(recent).toHaveLength(3);
      expect(new Set(got.map((e) => e.id)).size).toBe(5);
    }
    // More recent entries than B: all from the recent window.
    expect(buf.sampleSolver(rng, 6, 2, 'max_new', 1).every((e) => e.step === 5)).toBe(true);
    // Fewer entries than B: with replacement.
    const tiny = new TaskBuffer('ded', opts);
    tiny.insert(entry(1, 0));
    expect(tiny.sampleSolver(rng, 1, 3, 'max_new', 1)).toHaveLength(3);
  });

  it('FIFO cap evicts the oldest non-seed entry and never a seed', () => {
    const buf = new TaskBuffer('ded', { ...opts, maxBuffer: 4 });
    buf.insert(entry(0, 0, true));
    buf.insert(entry(1, 0, true));
    buf.insert(entry(2, 1));
    buf.insert(entry(3, 2));
    expect(buf.insert(entry(4, 3))).toBe(true);
    expect(buf.entries.map((e) => e.id)).toEqual(['ded-0', 'ded-1', 'ded-3', 'ded-4']);
    buf.insert(entry(5, 4));
    buf.insert(entry(6, 5));
    expect(buf.entries.map((e) => e.id)).toEqual(['ded-0', 'ded-1', 'ded-5', 'ded-6']);
    const seedsOnly = new TaskBuffer('ded', { ...opts, maxBuffer: 2 });
    seedsOnly.insert(entry(0, 0, true));
    seedsOnly.insert(entry(1, 0, true));
    expect(seedsOnly.insert(entry(2, 1))).toBe(false);
    expect(seedsOnly.size).toBe(2);
  });

  it('keep_oldest (AZR) drops new entries once full', () => {
    const buf = new TaskBuffer('ded', { ...opts, maxBuffer: 2, bufferEviction: 'keep_oldest' });
    buf.insert(entry(0, 1));
    buf.insert(entry(1, 1));
    expect(buf.insert(entry(2, 2))).toBe(false);
    expect(buf.entries.map((e) => e.id)).toEqual(['ded-0', 'ded-1']);
  });

  it('deduplicates by canonical program + input, unless dedup is off', () => {
    const buf = new TaskBuffer('ded', opts);
    expect(buf.insert(entry(1, 1))).toBe(true);
    expect(buf.insert({ ...entry(1, 2), id: 'other' })).toBe(false);
    expect(buf.insert(entry(1, 2, false, 'f(x) = x + 99'))).toBe(true);
    const noDedup = new TaskBuffer('ded', { ...opts, dedupBuffer: false });
    noDedup.insert(entry(1, 1));
    expect(noDedup.insert(entry(1, 2))).toBe(true);
    expect(noDedup.size).toBe(2);
  });

  it('references are distinct and JSON round-trips keep dedup keys', () => {
    const buf = new TaskBuffer('ded', opts);
    for (let k = 0; k < 10; k++) buf.insert(entry(k, 1));
    const refs = buf.sampleRefs(new Rng(1), 6);
    expect(new Set(refs.map((r) => r.id)).size).toBe(6);
    expect(buf.sampleRefs(new Rng(1), 50)).toHaveLength(10);
    const back = TaskBuffer.fromJSON('ded', opts, JSON.parse(JSON.stringify(buf.toJSON())));
    expect(back.size).toBe(10);
    expect(back.insert(entry(3, 9))).toBe(false);
  });
});
