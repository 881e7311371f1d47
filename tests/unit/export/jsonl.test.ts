import { describe, expect, it } from 'vitest';
import { defaultConfig } from '../../../src/config.ts';
import { bufferRow, exportJsonl, writeJsonl } from '../../../src/export/jsonl.ts';
import { parseManifest, provenanceFromRun } from '../../../src/export/manifest.ts';
import { memoryFolder } from '../../../src/model/model-source.ts';
import { memorySink } from '../../../src/model/safetensors-write.ts';
import type { GenerationRecord } from '../../../src/selfplay/types.ts';
import type { TaskEntry } from '../../../src/selfplay/types.ts';
import type { RunMeta } from '../../../src/store/types.ts';
import { text } from './fixtures.ts';

const ded: TaskEntry = {
  id: 'ded-1',
  type: 'ded',
  program: 'f(x) = x // 2',
  arity: 1,
  inputs: [[-7]],
  outputs: [-4],
  closed: ['-7 // 2'],
  binaryOps: 1,
  step: 0,
  seed: true,
  origin: 'identity_seed',
};
const ind: TaskEntry = {
  id: 'ind-9',
  type: 'ind',
  program: 'f(x, y) = x * y % 5',
  arity: 2,
  inputs: [
    [1, 2],
    [3, 4],
    [5, 6],
    [7, 8],
  ],
  outputs: [2, 2, 0, 1],
  closed: ['1 * 2 % 5', '3 * 4 % 5', '5 * 6 % 5', '7 * 8 % 5'],
  message: 'product, "mod" five\nline two ✓',
  binaryOps: 2,
  step: 3,
  seed: false,
  origin: 'model',
};

function sample(i: number): GenerationRecord & { i: number } {
  return {
    step: 3,
    kind: 'solve',
    type: 'ded',
    role: 'solve',
    prompt: `<|im_start|>user\nCompute ${i}<|im_end|>\n<think>`,
    response: ` ok </think> <answer>${i}</answer>`,
    tokens: 12,
    stopReason: 'stop_string',
    fmt: true,
    taskId: 'ded-1',
    correct: i % 2 === 0,
    reward: i % 2,
    advantage: 0.5,
    trained: true,
    i,
  };
}

const meta: RunMeta = {
  formatVersion: 1,
  id: 'run-42',
  createdAt: '2026-11-27T10:00:00.000Z',
  updatedAt: '2026-11-27T11:00:00.000Z',
  config: { ...defaultConfig(), seed: 99 },
  seed: 99,
  model: { repo: 'Qwen/Qwen2-0.5B-Instruct', revision: 'c540970', sha256: 'cd'.repeat(32) },
  tabzeroVersion: '0.1.0',
  templates: { system: 'You are a helpful assistant.' },
  name: 'run 42',
  preset: 'browser',
  status: 'paused',
  statusMessage: null,
  step: 3,
  seeded: true,
  notZeroData: false,
};

function lines(bytes: Uint8Array): unknown[] {
  const t = text(bytes);
  expect(t.endsWith('\n')).toBe(true);
  return t
    .slice(0, -1)
    .split('\n')
    .map((l) => JSON.parse(l));
}

describe('JSONL export', () => {
  it('a buffer entry is one line with spec 4.8 fields first and every field of the entry', () => {
    expect(Object.keys(bufferRow(ind))).toEqual([
      'id',
      'type',
      'program',
      'arity',
      'inputs',
      'outputs',
      'message',
      'step',
      'seed',
      'origin',
      'closed',
      'binaryOps',
    ]);
    expect(bufferRow(ind)).toEqual(ind);
    expect('message' in bufferRow(ded)).toBe(false);
    expect(bufferRow(ded)).toEqual(ded);
  });

  it('writes buffers/{ded,abd,ind}.jsonl, samples.jsonl and tabzero.json from the run', async () => {
    const out = memoryFolder('jsonl');
    async function* samples() {
      for (let i = 0; i < 5; i++) yield sample(i);
    }
    const prov = { ...provenanceFromRun(meta), createdAt: '2026-11-27T12:00:00.000Z' };
    const r = await exportJsonl(
      { buffers: { ded: [ded], abd: [], ind: [ind] }, samples: samples() },
      prov,
      out,
    );
    expect(r.lines).toEqual({
      'buffers/abd.jsonl': 0,
      'buffers/ded.jsonl': 1,
      'buffers/ind.jsonl': 1,
      'samples.jsonl': 5,
    });
    expect(r.files.sort()).toEqual([...out.files.keys()].sort());
    expect(lines(out.files.get('buffers/ded.jsonl')!)).toEqual([ded]);
    expect(lines(out.files.get('buffers/ind.jsonl')!)).toEqual([ind]);
    expect(out.files.get('buffers/abd.jsonl')!.byteLength).toBe(0);
    expect(lines(out.files.get('samples.jsonl')!)).toEqual([0, 1, 2, 3, 4].map(sample));
    // Each line is one entry: the message's newline is escaped, never a line break.
    expect(text(out.files.get('buffers/ind.jsonl')!).split('\n')).toHaveLength(2);

    const manifest = parseManifest(text(out.files.get('tabzero.json')!));
    expect(manifest).toMatchObject({
      kind: 'jsonl',
      seed: 99,
      run: { id: 'run-42', step: 3, zeroData: true },
      baseModel: meta.model,
      templates: meta.templates,
      lora: null,
      dtype: null,
      tabzeroVersion: '0.1.0',
    });
    expect(manifest.config).toEqual(meta.config);
  });

  it('streams: many rows go out in chunks, not as one string', async () => {
    const sink = memorySink();
    const rows = Array.from({ length: 30_000 }, (_, i) => ({ i, pad: 'x'.repeat(60) }));
    const n = await writeJsonl(sink, rows);
    expect(n).toBe(30_000);
    expect(sink.closed).toBe(true);
    expect(sink.chunks.length).toBeGreaterThan(1);
    expect(Math.max(...sink.chunks.map((c) => c.byteLength))).toBeLessThan(1.1 * (1 << 20));
    expect(lines(sink.bytes())).toEqual(rows);
  });

  it('refuses a row with no JSON form instead of writing "undefined"', async () => {
    await expect(writeJsonl(memorySink(), [undefined])).rejects.toThrow(/no JSON form/);
  });
});
