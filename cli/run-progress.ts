// What `tabzero train` and `pretrain` print while a run runs. On a terminal: one status line on stderr,
// redrawn in place (the step, its phase, the ETA), with the permanent lines (steps, evals, checkpoints)
// printed above it. Piped: one plain line per phase start, named with the words below, and no carriage
// returns or escape codes. With --json: stdout holds only protocol.ts's events, one JSON object a line.
import type { RunPhase, TrainerEvent } from '../src/protocol.ts';
import { trainerEvent } from '../src/trainer/run-start.ts';
import type { SessionEvent } from '../src/trainer/session.ts';

export type OutputMode = 'terminal' | 'lines' | 'json';

/** The word each phase is printed with (`solve` is the estimation rollouts and the solver responses). */
export const PHASE_WORDS: Readonly<Record<RunPhase, string>> = {
  seeding: 'seeding',
  proposing: 'propose',
  validating: 'verify',
  estimating: 'solve',
  solving: 'solve',
  updating: 'update',
  evaluating: 'eval',
  checkpointing: 'checkpoint',
};

const PHASE_NOTES: Partial<Record<RunPhase, string>> = {
  proposing: 'generating proposals',
  validating: 'checking proposals in the verifier',
  estimating: 'estimation rollouts and solver responses',
  solving: 'checking answers, rewards and advantages',
  updating: 'one policy update',
};

interface Stream {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export function outputMode(json: boolean, stderr: Stream = process.stderr): OutputMode {
  return json ? 'json' : stderr.isTTY ? 'terminal' : 'lines';
}

export function formatEta(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  return m < 60
    ? `${m}m${String(s % 60).padStart(2, '0')}s`
    : `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

export class RunProgress {
  private status = '';
  private readonly stepMs: number[] = [];
  private lastStep = 0;

  constructor(
    readonly mode: OutputMode,
    private readonly runId: string,
    private totalSteps: number,
    private readonly out: Stream = process.stdout,
    private readonly err: Stream = process.stderr,
  ) {}

  /** A permanent line (a step's summary, an eval, a message): stdout, or stderr under --json. */
  line(text: string): void {
    if (this.mode === 'json') {
      this.err.write(text + '\n');
      return;
    }
    this.clearStatus();
    this.out.write(text + '\n');
    this.redraw();
  }

  setTotalSteps(n: number): void {
    this.totalSteps = n;
  }

  /** A session event: JSON under --json; otherwise a phase start moves the status (or prints a line). */
  event(e: SessionEvent): void {
    if (this.mode === 'json') {
      this.json(trainerEvent(this.runId, e));
      return;
    }
    if (e.type === 'step') {
      this.stepMs.push(e.wallMs);
      this.lastStep = e.result.step;
    }
    if (e.type !== 'phase') return;
    const { step, phase, message } = e.progress;
    const word = PHASE_WORDS[phase];
    const note = message ?? PHASE_NOTES[phase];
    const where = phase === 'seeding' ? 'before step 1' : `step ${step}/${this.totalSteps}`;
    const text = `${where} ${word}${note ? `: ${note}` : ''}`;
    if (this.mode === 'lines') {
      this.err.write(`${text}${phase === 'proposing' ? this.etaText() : ''}\n`);
      return;
    }
    // One terminal row: a wrapped status line could not be redrawn in place.
    this.status = `${text}${this.etaText()}`.slice(0, Math.max(20, (this.err.columns ?? 100) - 1));
    this.redraw();
  }

  /** Any protocol event, as one JSON line (--json only). */
  json(e: TrainerEvent): void {
    if (this.mode === 'json') this.out.write(JSON.stringify(e) + '\n');
  }

  /** Clears the status line (call before the process exits). */
  done(): void {
    this.clearStatus();
    this.status = '';
  }

  private etaText(): string {
    if (!this.stepMs.length) return '';
    const mean = this.stepMs.reduce((a, b) => a + b, 0) / this.stepMs.length;
    const left = Math.max(0, this.totalSteps - this.lastStep);
    return ` (about ${formatEta((mean * left) / 1000)} left)`;
  }

  private clearStatus(): void {
    if (this.mode === 'terminal' && this.status) this.err.write('\r\x1b[K');
  }

  private redraw(): void {
    if (this.mode === 'terminal' && this.status) this.err.write(`\r\x1b[K${this.status}`);
  }
}
