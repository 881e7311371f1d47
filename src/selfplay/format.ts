// Response format checks and answer extraction (spec 4.5), shared by every role.

/** The prefill that ends every prompt (spec 4.4); the format check runs on PREFILL + response. */
export const THINK_PREFILL = '<think>';
export const ANSWER_STOP = '</answer>';

const FORMAT_RE = /^<think>[\s\S]*?<\/think>\s*<answer>[\s\S]*?<\/answer>/;

/** AZR's format regex on a full text that starts with `<think>` (start-anchored, end not anchored). */
export function formatOkFull(text: string): boolean {
  return FORMAT_RE.test(text);
}

/** Format check of a response generated after the `<think>` prefill. */
export function formatOk(response: string): boolean {
  return formatOkFull(THINK_PREFILL + response);
}

/** AZR extract_answer: after the last `<answer>`, before the next `</answer>` (or the end); '' if none. */
export function answerBody(text: string): string {
  if (!text.includes('<answer>')) return '';
  return text.split('<answer>').pop()!.split('</answer>')[0].trim();
}

/** Unify line endings, strip Markdown fences and back-ticks, map − and × to ASCII. */
export function normaliseBody(body: string): string {
  return body
    .replace(/\r\n?/g, '\n')
    .split('\n')
    .filter((line) => !/^\s*```[\w-]*\s*$/.test(line))
    .join('\n')
    .replace(/`/g, '')
    .replace(/\u2212/g, '-')
    .replace(/\u00d7/g, '*')
    .trim();
}

export function extractBody(response: string): string {
  return normaliseBody(answerBody(response));
}

const RAW_PREDICTION = /^\s*(-?\d+)/;

/** First integer of a raw completion (spec 5.2 mode A), or null. */
export function rawPrediction(text: string): string | null {
  const m = RAW_PREDICTION.exec(text);
  return m ? m[1] : null;
}
