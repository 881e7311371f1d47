// Side-by-side comparison of two eval results (two checkpoints, or a checkpoint and the base model):
// accuracy per tier and per operator, and the items whose answer changed.
import type { EvalRecord } from '../../protocol.ts';
import type { Accuracy, EvalItemResult } from '../../selfplay/evaluate.ts';

export interface CompareRow {
  key: string;
  a: Accuracy | null;
  b: Accuracy | null;
  /** b − a in accuracy; null when either side lacks the key. */
  delta: number | null;
}

export interface ChangedItem {
  id: string;
  a: EvalItemResult;
  b: EvalItemResult;
  /** 'fixed' (wrong → right), 'broken' (right → wrong), or 'changed' (different wrong answer). */
  change: 'fixed' | 'broken' | 'changed';
}

export interface EvalComparison {
  overall: CompareRow;
  perTier: CompareRow[];
  perOp: CompareRow[];
  changed: ChangedItem[];
  /** Why the two cannot be compared item by item (different set or mode), if so. */
  warning: string | null;
}

function rows(a: Record<string, Accuracy>, b: Record<string, Accuracy>): CompareRow[] {
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
  return keys.map((key) => {
    const x = a[key] ?? null;
    const y = b[key] ?? null;
    return { key, a: x, b: y, delta: x && y ? y.accuracy - x.accuracy : null };
  });
}

export function compareEvals(a: EvalRecord, b: EvalRecord): EvalComparison {
  const warning =
    a.set !== b.set || a.mode !== b.mode
      ? `These evals used different sets or modes (${a.set}/${a.mode} vs ${b.set}/${b.mode}); only the totals compare.`
      : null;
  const byId = new Map(a.report.items.map((it) => [it.id, it]));
  const changed: ChangedItem[] = [];
  if (!warning) {
    for (const y of b.report.items) {
      const x = byId.get(y.id);
      if (!x || x.prediction === y.prediction) continue;
      const change = !x.correct && y.correct ? 'fixed' : x.correct && !y.correct ? 'broken' : 'changed';
      changed.push({ id: y.id, a: x, b: y, change });
    }
  }
  const acc = (r: EvalRecord): Accuracy => ({
    n: r.report.n,
    correct: r.report.correct,
    accuracy: r.report.accuracy,
  });
  return {
    overall: { key: 'overall', a: acc(a), b: acc(b), delta: b.report.accuracy - a.report.accuracy },
    perTier: rows(a.report.perTier, b.report.perTier),
    perOp: rows(a.report.perOp, b.report.perOp),
    changed,
    warning,
  };
}

/** A short label for an eval in pickers: which weights, which set, and ONNX Runtime when it ran there. */
export function evalLabel(r: EvalRecord): string {
  const weights = r.step === 0 ? 'base model' : `step ${r.step}`;
  const runtime = r.backend === 'onnx' ? ' · ONNX Runtime' : '';
  return `${weights}${runtime} · ${r.set} (${r.mode}${r.limit ? `, first ${r.limit}` : ''}) · ${(r.report.accuracy * 100).toFixed(1)}%`;
}
