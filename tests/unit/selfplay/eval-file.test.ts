// Your own eval sets (`tabzero eval --eval-file`, the Eval tab's upload): every file `tabzero eval-set`
// writes parses back to the same items; a file with bad lines is refused whole, one `FILE:LINE: what`
// message per bad line.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readEvalFiles } from '../../../cli/commands/train.ts';
import {
  ConfigError,
  EVAL_SET_NAMES,
  parseSetFlag,
  resolveConfig,
  type EvalFileSet,
} from '../../../src/config.ts';
import { sha256Hex } from '../../../src/model/sha256.ts';
import { EvalFileError, parseEvalFile } from '../../../src/selfplay/eval-file.ts';
import { evaluateConfigured } from '../../../src/selfplay/evaluate.ts';
import { generateEvalSetJsonl, toEvalItems } from '../../../src/selfplay/evalsets.ts';
import { runEvalExpressions } from '../../../src/trainer/session.ts';
import { ChatMLTestTokenizer, ScriptedPolicy } from './helpers.ts';

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

describe('the evalFiles knob', () => {
  const text = [
    '{"id":"a","prompt":"Calculate: 12 + 7 = ","answer":"19"}',
    '{"id":"b","prompt":"Calculate: 9 * 3 = ","answer":"27"}',
  ].join('\n');
  const file = (name = 'mine.jsonl'): EvalFileSet => ({
    name,
    sha256: sha256Hex(new TextEncoder().encode(text)),
    items: parseEvalFile(text, name),
  });

  it('tabzero train --eval-file reads each file into { name, sha256 of its bytes, items }', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tabzero-evalfiles-'));
    try {
      writeFileSync(join(dir, 'mine.jsonl'), text);
      expect(await readEvalFiles([join(dir, 'mine.jsonl')])).toEqual([file()]);
      writeFileSync(join(dir, 'bad.jsonl'), 'nope\n');
      await expect(readEvalFiles([join(dir, 'bad.jsonl')])).rejects.toThrow(
        `${join(dir, 'bad.jsonl')}:1: not JSON`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a run evaluates its files after its built-in sets, under their names, and holds their expressions out', async () => {
    const config = resolveConfig('smoke', { evalFiles: [file()], evalLimit: 0, evalMode: 'raw' });
    const tokenizer = new ChatMLTestTokenizer();
    const policy = new ScriptedPolicy(tokenizer, (p) => (p.includes('12 + 7') ? ' 19' : ' 0'));
    const reports = await evaluateConfigured(policy, tokenizer, { ...config, evalSets: [] });
    expect(reports.map((r) => [r.set, r.mode, r.n, r.correct])).toEqual([['mine.jsonl', 'raw', 2, 1]]);
    const both = await evaluateConfigured(policy, tokenizer, { ...config, evalLimit: 3 });
    expect(both.map((r) => r.set)).toEqual(['arith_eval_200', 'mine.jsonl']);
    const held = runEvalExpressions(config);
    expect(held.has('12 + 7') && held.has('9 * 3')).toBe(true);
  });

  it('refuses malformed entries, repeated names and built-in names, and --set', () => {
    const bad = (evalFiles: unknown) => () =>
      resolveConfig('smoke', { evalFiles: evalFiles as EvalFileSet[] });
    expect(bad([file()])).not.toThrow();
    expect(bad([{ ...file(), sha256: 'abc' }])).toThrow(/sha256 is not 64 hex digits/);
    expect(bad([{ ...file(), items: [] }])).toThrow(/mine\.jsonl: no items/);
    expect(bad([{ ...file(), items: [{ prompt: 'x' }] }])).toThrow(/item 1 lacks/);
    expect(bad([file(), file()])).toThrow(/two eval sets are named 'mine\.jsonl'/);
    expect(bad([file('arith_eval_200')])).toThrow(ConfigError);
    expect(() => parseSetFlag('evalFiles=mine.jsonl')).toThrow(/--eval-file/);
  });
});
