// Seed sets (spec 4.8) as JSONL: a header line (format, version, source run, model, zero-data flag), then
// one task entry per line, as AZR ships `data/*_seed_io.jsonl`. The same text is seed.jsonl in a run
// folder, the seed set in the archive, and what "export seed set" / "import seed set" read and write.
import type { TaskEntry } from '../selfplay/types.ts';
import { CorruptDataError } from './errors.ts';
import { SEED_SET_FORMAT, SEED_SET_FORMAT_VERSION, checkFormat, parseJsonl, toJsonl } from './format.ts';
import type { SeedSet } from './types.ts';

export function encodeSeedSet(set: SeedSet): string {
  return toJsonl([
    { format: SEED_SET_FORMAT, formatVersion: SEED_SET_FORMAT_VERSION, ...set.source },
    ...set.entries,
  ]);
}

export function parseSeedSet(text: string, what = 'seed set'): SeedSet {
  const [header, ...entries] = parseJsonl<Record<string, unknown>>(text, what);
  if (!header) throw new CorruptDataError(`${what}: empty file`);
  checkFormat(header, SEED_SET_FORMAT, SEED_SET_FORMAT_VERSION, what);
  const { runId, model, zeroData, createdAt } = header as unknown as SeedSet['source'];
  if (
    typeof runId !== 'string' ||
    typeof zeroData !== 'boolean' ||
    typeof model !== 'object' ||
    model === null
  ) {
    throw new CorruptDataError(`${what}: header lacks runId, model or zeroData`);
  }
  entries.forEach((e, i) => {
    if (typeof e.program !== 'string' || !Array.isArray(e.inputs) || !Array.isArray(e.outputs)) {
      throw new CorruptDataError(`${what}: entry ${i + 1} is not a task (needs program, inputs, outputs)`);
    }
  });
  return {
    source: { runId, model, zeroData, createdAt: String(createdAt) },
    entries: entries as unknown as TaskEntry[],
  };
}
