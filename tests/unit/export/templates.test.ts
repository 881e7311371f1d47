import { describe, expect, it } from 'vitest';
import { defaultConfig } from '../../../src/config.ts';
import { runPromptTemplates } from '../../../src/export/templates.ts';
import { RULES, SYSTEM_PROMPT } from '../../../src/selfplay/prompts.ts';

describe('runPromptTemplates', () => {
  it('carries the system prompt, prefill, stop string and the six role prompts as the Runner renders them', () => {
    const t = runPromptTemplates({ ...defaultConfig(), deductionView: 'expression', inductionInputs: 6 });
    expect(Object.keys(t).sort()).toEqual(
      [
        'system',
        'rules',
        'assistant_prefill',
        'stop_string',
        'chat_format',
        'ded_propose',
        'abd_propose',
        'ind_propose',
        'ded_solve',
        'abd_solve',
        'ind_solve',
      ].sort(),
    );
    expect(t.system).toBe(SYSTEM_PROMPT);
    expect(t.assistant_prefill).toBe('<think>');
    expect(t.stop_string).toBe('</answer>');
    for (const k of ['ded_propose', 'abd_propose', 'ind_propose', 'abd_solve', 'ind_solve'])
      expect(t[k], k).toContain(RULES);
    expect(t.ded_propose).toContain(
      '<example_1>\nf(x) = (x * 7 + 3) % 10\ninput: 12\noutput: 7\n</example_1>',
    );
    expect(t.ded_solve).toContain('Expression: (12 * 7 + 3) % 10');
    expect(t.ind_propose).toContain('## Task: Choose 6 inputs');
    // Python's % for the negative example input: (-3 * 7 + 3) % 10 = 2.
    expect(t.ind_solve).toContain('f(12) = 7\nf(-3) = 2\nf(5) = 8\nMessage:');
  });

  it("follows the run's deduction view and induction size", () => {
    const t = runPromptTemplates({ deductionView: 'program', inductionInputs: 10 });
    expect(t.ded_solve).toContain('Function: f(x) = (x * 7 + 3) % 10\nCompute f(12).');
    expect(t.ind_solve.match(/^f\(-?\d+\) = \d+$/gm)).toHaveLength(5);
  });
});
