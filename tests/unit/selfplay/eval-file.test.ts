// Your own eval sets (`tabzero eval --eval-file`, the Eval tab's upload): every file `tabzero eval-set`
// writes parses back to the same items; a file with bad lines is refused whole, one `FILE:LINE: what`
// message per bad line.
import { describe, expect, it } from 'vitest';
import { EVAL_SET_NAMES } from '../../../src/config.ts';
import { EvalFileError, parseEvalFile } from '../../../src/selfplay/eval-file.ts';
import { generateEvalSetJsonl, toEvalItems } from '../../../src/selfplay/evalsets.ts';

function errorsOf(text: string): readonly string[] {
  try {
    parseEvalFile(text, 'my.jsonl');
  } catch (e) {
    if (e instanceof EvalFileError) return e.lines;
    throw e;
  }
  throw new Error('the file was accepted');
}

describe('eval files', () => {
  for (const name of EVAL_SET_NAMES)
    it(`the ${name} file that eval-set writes parses to its items`, () => {
      const items = parseEvalFile(generateEvalSetJsonl(name), `${name}.jsonl`);
      const want = toEvalItems(name);
      expect(items.map((i) => [i.id, i.prompt, i.answer, i.tier])).toEqual(
        want.map((i) => [i.id, i.prompt, i.answer, i.tier]),
      );
      // Chat mode's expression: metadata.expression, else the raw prompt's.
      expect(items.every((i) => i.expression.length > 0)).toBe(true);
    });

  it('optional keys: id, difficulty and operation default; the expression comes from the prompt; other keys are ignored', () => {
    const [item] = parseEvalFile('{"prompt":"Calculate: 12 + 7 = ","answer":"19","note":"x"}\n', 'f.jsonl');
    expect(item).toEqual({
      id: 'line1',
      prompt: 'Calculate: 12 + 7 = ',
      answer: '19',
      tier: 'all',
      op: 'unknown',
      expression: '12 + 7',
    });
    const [withMeta] = parseEvalFile(
      JSON.stringify({
        id: 'a',
        prompt: 'What is 3 times 4?',
        answer: '-12',
        difficulty: 'easy',
        metadata: { operation: 'mul', expression: '3 * -4' },
      }),
      'f.jsonl',
    );
    expect(withMeta).toMatchObject({ id: 'a', tier: 'easy', op: 'mul', expression: '3 * -4', answer: '-12' });
  });

  it('refuses every kind of bad line, one message per line, counted from 1', () => {
    const lines = [
      '{"prompt":"Calculate: 1 + 1 = ","answer":"2","id":"ok"}',
      'not json',
      '[1, 2]',
      '{"answer":"2"}',
      '{"prompt":"Calculate: 1 + 1 = ","answer":2}',
      '{"prompt":"Calculate: 1 + 1 = ","answer":"two"}',
      '{"prompt":"Calculate: 1 + 1 = ","answer":"2","id":7}',
      '{"prompt":"Calculate: 1 + 1 = ","answer":"2","difficulty":3}',
      '{"prompt":"Calculate: 1 + 1 = ","answer":"2","metadata":"mul"}',
      '{"prompt":"Calculate: 1 + 1 = ","answer":"2","metadata":{"operation":1}}',
      '{"prompt":"What is two?","answer":"2"}',
      '',
      '{"prompt":"Calculate: 2 + 2 = ","answer":"4","id":"ok"}',
    ];
    expect(errorsOf(lines.join('\n'))).toEqual([
      'my.jsonl:2: not JSON',
      'my.jsonl:3: not a JSON object',
      'my.jsonl:4: "prompt" must be a non-empty string',
      'my.jsonl:5: "answer" must be a string',
      'my.jsonl:6: "answer" "two" is not an integer',
      'my.jsonl:7: "id" must be a string',
      'my.jsonl:8: "difficulty" must be a string',
      'my.jsonl:9: "metadata" must be an object',
      'my.jsonl:10: "metadata.operation" must be a string',
      'my.jsonl:11: no expression for chat mode: give "metadata.expression", or a prompt "Calculate: … = "',
      'my.jsonl:13: "id" "ok" repeats line 1',
    ]);
    expect(errorsOf('\n\n')).toEqual(['my.jsonl:1: no eval items (the file is empty)']);
  });
});
