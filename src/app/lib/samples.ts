// Sample-table logic: the filter form → SampleFilter, the verdict of a generation in words, and the raw
// text split into <think>/<answer> segments for highlighting (rendered as text, never as HTML).
import type { SampleFilter } from '../../protocol.ts';
import type { GenerationRecord } from '../../selfplay/types.ts';
import type { TaskType } from '../../selfplay/types.ts';

export interface Segment {
  kind: 'text' | 'tag' | 'think' | 'answer';
  text: string;
}

const TAG = /<\/?(think|answer)>/g;

/** Splits a response into plain text, the tags themselves, and the bodies inside <think> and <answer>. */
export function highlightSegments(text: string): Segment[] {
  const out: Segment[] = [];
  let open: 'think' | 'answer' | null = null;
  let last = 0;
  const push = (kind: Segment['kind'], s: string) => {
    if (s) out.push({ kind, text: s });
  };
  for (const m of text.matchAll(TAG)) {
    const closing = m[0][1] === '/';
    const name = m[1] as 'think' | 'answer';
    push(open ?? 'text', text.slice(last, m.index));
    push('tag', m[0]);
    open = closing ? (open === name ? null : open) : name;
    last = m.index + m[0].length;
  }
  push(open ?? 'text', text.slice(last));
  return out;
}

/** The filter form as the user typed it (empty strings mean "any"). */
export interface SampleFilterForm {
  step: string;
  type: '' | TaskType;
  role: '' | 'propose' | 'solve';
  kind: '' | GenerationRecord['kind'];
  minReward: string;
  maxReward: string;
  valid: '' | 'valid' | 'invalid';
}

export const EMPTY_FILTER: SampleFilterForm = {
  step: '',
  type: '',
  role: '',
  kind: '',
  minReward: '',
  maxReward: '',
  valid: '',
};

function numberOrUndefined(raw: string): number | undefined {
  const s = raw.trim();
  if (s === '') return undefined;
  const n = Number(s);
  return Number.isFinite(n) ? n : undefined;
}

export function toSampleFilter(form: SampleFilterForm, offset: number, limit: number): SampleFilter {
  const filter: SampleFilter = { offset, limit };
  const step = numberOrUndefined(form.step);
  if (step !== undefined) filter.step = Math.trunc(step);
  if (form.type) filter.type = form.type;
  if (form.role) filter.role = form.role;
  if (form.kind) filter.kind = form.kind;
  const min = numberOrUndefined(form.minReward);
  if (min !== undefined) filter.minReward = min;
  const max = numberOrUndefined(form.maxReward);
  if (max !== undefined) filter.maxReward = max;
  if (form.valid) filter.valid = form.valid === 'valid';
  return filter;
}

export type Verdict = { tone: 'good' | 'bad' | 'neutral'; text: string };

/** What the verifier said, in a few words. */
export function verdictOf(r: GenerationRecord): Verdict {
  if (!r.fmt) return { tone: 'bad', text: 'format error' };
  if (r.role === 'propose' || r.kind === 'seed') {
    if (r.valid === false) return { tone: 'bad', text: `invalid: ${r.invalidReason ?? 'no reason given'}` };
    if (r.valid === true) {
      const s = r.learnability;
      return {
        tone: 'good',
        text: s === null || s === undefined ? 'valid' : `valid · solved ${Math.round(s * 100)}% of the time`,
      };
    }
    return { tone: 'neutral', text: 'not checked' };
  }
  if (r.correct === true) return { tone: 'good', text: 'correct' };
  if (r.correct === false) return { tone: 'bad', text: 'wrong' };
  return { tone: 'neutral', text: 'not scored' };
}

/** The parsed task in one line: program, then input → output pairs. */
export function describeTask(task: GenerationRecord['task']): string {
  if (!task) return '';
  const pairs = task.inputs.map((inp, i) => `(${inp.join(', ')}) → ${task.outputs[i] ?? '?'}`).join('; ');
  return `${task.program}   ${pairs}${task.message ? `   “${task.message}”` : ''}`;
}
