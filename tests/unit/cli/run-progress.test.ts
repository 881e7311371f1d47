// What `tabzero train` prints while it runs: on a terminal one status line redrawn in place, piped one
// plain line per phase start (the words seeding, propose, verify, solve, update, eval, checkpoint; no
// carriage return or escape code), and with --json only protocol.ts events on stdout.
import { describe, expect, it } from 'vitest';
import type { RunPhase } from '../../../src/protocol.ts';
import type { StepResult } from '../../../src/selfplay/types.ts';
import type { SessionEvent } from '../../../src/trainer/session.ts';
import { formatEta, outputMode, PHASE_WORDS, RunProgress } from '../../../cli/run-progress.ts';

function sink(isTTY: boolean) {
  const chunks: string[] = [];
  return { chunks, stream: { isTTY, columns: 80, write: (s: string) => chunks.push(s) } };
}

const phase = (step: number, p: RunPhase, message?: string): SessionEvent => ({
  type: 'phase',
  progress: { step, phase: p, ...(message ? { message } : {}) },
});
const stepDone = (step: number, wallMs: number): SessionEvent => ({
  type: 'step',
  result: { step, generations: [], metrics: { step } } as unknown as StepResult,
  wallMs,
});

/** One step of events, as the session emits them. */
function oneStep(p: RunProgress, step: number): void {
  for (const ph of ['proposing', 'validating', 'estimating', 'solving', 'updating'] as const)
    p.event(phase(step, ph));
  p.event(stepDone(step, 10_000));
  p.event(phase(step, 'evaluating'));
  p.event(phase(step, 'checkpointing', 'timer'));
}

describe('tabzero train progress', () => {
  it('chooses its mode from --json and whether stderr is a terminal', () => {
    expect(outputMode(true, { isTTY: true, write: () => 0 })).toBe('json');
    expect(outputMode(false, { isTTY: true, write: () => 0 })).toBe('terminal');
    expect(outputMode(false, { write: () => 0 })).toBe('lines');
  });

  it('piped: one plain line per phase start, named with the phase words', () => {
    const out = sink(false);
    const err = sink(false);
    const p = new RunProgress('lines', 'run', 3, out.stream, err.stream);
    p.event(phase(0, 'seeding', 'triplets: round 1/40, 3/8 valid, 4/16 tasks'));
    oneStep(p, 1);
    p.line('step 1/3 …');
    oneStep(p, 2);
    const lines = err.chunks.join('').split('\n').filter(Boolean);
    expect(lines[0]).toBe('before step 1 seeding: triplets: round 1/40, 3/8 valid, 4/16 tasks');
    expect(lines.slice(1, 8).map((l) => l.split(' ')[2].replace(':', ''))).toEqual([
      'propose',
      'verify',
      'solve',
      'solve',
      'update',
      'eval',
      'checkpoint',
    ]);
    // The second step's first line carries the ETA from the first step's time (10 s × 2 steps left).
    expect(lines[8]).toBe('step 2/3 propose: generating proposals (about 20s left)');
    const printed = err.chunks.join('') + out.chunks.join('');
    expect(printed.includes('\r') || printed.includes('\x1b')).toBe(false);
    expect(out.chunks).toEqual(['step 1/3 …\n']);
  });

  it('on a terminal: one status line redrawn in place, permanent lines above it', () => {
    const out = sink(true);
    const err = sink(true);
    const p = new RunProgress('terminal', 'run', 3, out.stream, err.stream);
    p.event(phase(1, 'proposing'));
    p.event(phase(1, 'estimating'));
    expect(err.chunks.at(-1)).toBe('\r\x1b[Kstep 1/3 solve: estimation rollouts and solver responses');
    p.line('checkpoint at step 1 (timer)');
    // The status is cleared, the line printed, the status drawn again.
    expect(err.chunks.slice(-2)).toEqual([
      '\r\x1b[K',
      '\r\x1b[Kstep 1/3 solve: estimation rollouts and solver responses',
    ]);
    expect(out.chunks).toEqual(['checkpoint at step 1 (timer)\n']);
    p.event(phase(1, 'seeding', 'x'.repeat(200)));
    expect(err.chunks.at(-1)!.length).toBeLessThanOrEqual('\r\x1b[K'.length + 79);
    p.done();
    expect(err.chunks.at(-1)).toBe('\r\x1b[K');
  });

  it('--json: every event as one protocol.ts JSON line on stdout, human lines on stderr', () => {
    const out = sink(false);
    const err = sink(false);
    const p = new RunProgress('json', 'runs/r1', 3, out.stream, err.stream);
    oneStep(p, 1);
    p.line('run finished at step 1');
    const events = out.chunks.map(
      (c) => JSON.parse(c) as { type: string; runId?: string; progress?: { phase: string } },
    );
    expect(events.map((e) => e.type)).toEqual([
      'phase',
      'phase',
      'phase',
      'phase',
      'phase',
      'step',
      'phase',
      'phase',
    ]);
    expect(events[0]).toEqual({ type: 'phase', progress: { runId: 'runs/r1', step: 1, phase: 'proposing' } });
    expect(out.chunks.every((c) => c.endsWith('\n') && !c.slice(0, -1).includes('\n'))).toBe(true);
    expect(err.chunks).toEqual(['run finished at step 1\n']);
  });

  it('names every phase and formats ETAs', () => {
    expect(new Set(Object.values(PHASE_WORDS))).toEqual(
      new Set(['seeding', 'propose', 'verify', 'solve', 'update', 'eval', 'checkpoint']),
    );
    expect([formatEta(42), formatEta(125), formatEta(7260)]).toEqual(['42s', '2m05s', '2h01m']);
  });
});
