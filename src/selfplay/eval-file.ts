// Your own eval sets: eval items in the JSONL form `tabzero eval-set` writes, one object per line with
// `prompt` and `answer` (strings, required) and optionally `id`, `difficulty` (the tier) and
// `metadata.operation` (the op) and `metadata.expression` (what chat mode shows; else the prompt between
// `Calculate:` and `=`). Other keys are ignored. A file with any bad line is refused whole, with one
// message per bad line, so nothing is scored on a half-read file.
import type { EvalItem } from '../config.ts';

/** Every bad line of an eval file, each as `FILE:LINE: what is wrong` (LINE counted from 1). */
export class EvalFileError extends Error {
  override name = 'EvalFileError';
  constructor(readonly lines: readonly string[]) {
    super(lines.join('\n'));
  }
}

const INTEGER = /^-?\d+$/;
const RAW_PROMPT = /^Calculate:(.*)=\s*$/s;

function lineItem(row: unknown, lineNo: number): EvalItem | string {
  if (typeof row !== 'object' || row === null || Array.isArray(row)) return 'not a JSON object';
  const r = row as Record<string, unknown>;
  if (typeof r.prompt !== 'string' || r.prompt.trim() === '') return '"prompt" must be a non-empty string';
  if (typeof r.answer !== 'string') return '"answer" must be a string';
  if (!INTEGER.test(r.answer)) return `"answer" ${JSON.stringify(r.answer)} is not an integer`;
  if (r.id !== undefined && typeof r.id !== 'string') return '"id" must be a string';
  if (r.difficulty !== undefined && typeof r.difficulty !== 'string') return '"difficulty" must be a string';
  const meta = r.metadata ?? {};
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) return '"metadata" must be an object';
  const m = meta as Record<string, unknown>;
  if (m.operation !== undefined && typeof m.operation !== 'string')
    return '"metadata.operation" must be a string';
  if (m.expression !== undefined && typeof m.expression !== 'string')
    return '"metadata.expression" must be a string';
  const expression = (m.expression as string | undefined) ?? RAW_PROMPT.exec(r.prompt)?.[1]?.trim();
  if (!expression)
    return 'no expression for chat mode: give "metadata.expression", or a prompt "Calculate: … = "';
  return {
    id: (r.id as string | undefined) ?? `line${lineNo}`,
    prompt: r.prompt,
    answer: r.answer,
    tier: (r.difficulty as string | undefined) ?? 'all',
    op: (m.operation as string | undefined) ?? 'unknown',
    expression,
  };
}

/** Parses an eval file; throws EvalFileError naming every bad line (and an empty file). */
export function parseEvalFile(text: string, file: string): EvalItem[] {
  const items: EvalItem[] = [];
  const errors: string[] = [];
  const ids = new Map<string, number>();
  text.split(/\r?\n/).forEach((line, k) => {
    if (!line.trim()) return;
    const lineNo = k + 1;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch {
      errors.push(`${file}:${lineNo}: not JSON`);
      return;
    }
    const item = lineItem(row, lineNo);
    if (typeof item === 'string') {
      errors.push(`${file}:${lineNo}: ${item}`);
      return;
    }
    const first = ids.get(item.id);
    if (first !== undefined) {
      errors.push(`${file}:${lineNo}: "id" ${JSON.stringify(item.id)} repeats line ${first}`);
      return;
    }
    ids.set(item.id, lineNo);
    items.push(item);
  });
  if (errors.length > 0) throw new EvalFileError(errors);
  if (items.length === 0) throw new EvalFileError([`${file}:1: no eval items (the file is empty)`]);
  return items;
}
