// Seed sets (spec 4.8) as JSONL: a header line (format, version, source run, model, zero-data flag), then
// one task entry per line, as AZR ships `data/*_seed_io.jsonl`. The same text is seed.jsonl in a run
// folder, the seed set in the archive, and what "export seed set" / "import seed set" read and write.
import type { TaskEntry } from '../selfplay/types.ts';
import { CorruptDataError } from './errors.ts';
import {
  SEED_SET_FORMAT,
  SEED_SET_FORMAT_VERSION,
  checkFormat,
  isJsonObject,
  parseJson,
  toJsonl,
} from './format.ts';
import type { SeedSet } from './types.ts';

export function encodeSeedSet(set: SeedSet): string {
  return toJsonl([
    { format: SEED_SET_FORMAT, formatVersion: SEED_SET_FORMAT_VERSION, ...set.source },
    ...set.entries,
  ]);
}

/** What to pass instead of a file that is not a seed set. */
const SEED_SET_ACTION = "use a run's seed.jsonl or an exported seed set (tabzero export --format seed-set)";

/**
 * Reads a seed set. A file that is not one (empty, not JSONL, no seed-set header: an eval set, say) is a
 * CorruptDataError that says so and what to pass instead; a newer format, a FormatVersionError.
 */
export function parseSeedSet(text: string, what = 'seed set'): SeedSet {
  const notASeedSet = (problem: string) =>
    new CorruptDataError(`${what}: not a seed set (${problem}); ${SEED_SET_ACTION}`);
  if (text.trim() === '') throw notASeedSet('the file is empty');
  const lines = text.split('\n');
  let header: unknown;
  try {
    header = JSON.parse(lines[0]);
  } catch {
    throw notASeedSet('line 1 is not JSON');
  }
  if (!isJsonObject(header) || header.format !== SEED_SET_FORMAT)
    throw notASeedSet(`line 1 is not a ${SEED_SET_FORMAT} header`);
  checkFormat(header, SEED_SET_FORMAT, SEED_SET_FORMAT_VERSION, what);
  const { runId, model, zeroData, createdAt } = header as unknown as SeedSet['source'];
  if (
    typeof runId !== 'string' ||
    typeof zeroData !== 'boolean' ||
    typeof model !== 'object' ||
    model === null
  ) {
    throw new CorruptDataError(
      `${what}: the header lacks runId, model or zeroData; export the seed set again from its run`,
    );
  }
  const entries: TaskEntry[] = [];
  for (let i = 1; i < lines.length; i++) {
    if (lines[i].trim() === '') continue;
    const e = parseJson(lines[i], `${what} line ${i + 1}`);
    if (
      !isJsonObject(e) ||
      typeof e.program !== 'string' ||
      !Array.isArray(e.inputs) ||
      !Array.isArray(e.outputs)
    ) {
      throw new CorruptDataError(
        `${what}: line ${i + 1} is not a task (needs program, inputs and outputs); ${SEED_SET_ACTION}`,
      );
    }
    entries.push(e as unknown as TaskEntry);
  }
  return {
    source: { runId, model, zeroData, createdAt: String(createdAt) },
    entries,
  };
}
