// `tabzero arith --jsonl` answers, one line per request, malformed lines included.
import { describe, expect, it } from 'vitest';
import { answerJsonLine } from '../../../cli/commands/arith.ts';

describe('arith --jsonl', () => {
  it('answers canonical + value, typed errors, and bad requests', () => {
    expect(JSON.parse(answerJsonLine('{"program": "(x, y) => x*(y+2)", "input": [3, 4]}'))).toEqual({
      canonical: 'f(x, y) = x * (y + 2)',
      value: '18',
    });
    expect(JSON.parse(answerJsonLine('{"program": "7 // 0"}'))).toEqual({ error: 'div0' });
    expect(JSON.parse(answerJsonLine('{"program": "-7 % 3"}'))).toEqual({
      canonical: '(-7) % 3',
      value: '2',
    });
    expect(JSON.parse(answerJsonLine('{"program": "x ** 2", "input": [2]}'))).toEqual({ error: 'syntax' });
    expect(JSON.parse(answerJsonLine('{"program": "x + 1"}'))).toEqual({ error: 'arity' });
    expect(JSON.parse(answerJsonLine('nope')).error).toBe('bad_request');
    expect(JSON.parse(answerJsonLine('{"program": "x", "input": [0.5]}')).error).toBe('bad_request');
  });
});
