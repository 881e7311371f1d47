// The runs a store holds, as the app sees them: list, summaries, history, samples, buffers, checkpoints,
// restore, export, import and comparison. Store-only: nothing here needs the GPU or a loaded model.
import type {
  CheckpointSummary,
  EvalRecord,
  ExportedFile,
  ExportFormat,
  RunComparison,
  RunSummary,
  RunSummaryStatus,
  SampleFilter,
} from '../protocol.ts';
import { compareRuns, loadRunData, type XAxis } from '../experiments/compare.ts';
import { comparisonCurves, xAxisLabel } from '../experiments/curves.ts';
import { blobSink } from '../export/blob-sink.ts';
import { ZipWriter } from '../export/zip-writer.ts';
import type { LoadedModel } from '../model/model-folder.ts';
import type { ModelSource } from '../model/model-source.ts';
import { blobSource } from '../model/byte-source.ts';
import type { GenerationRecord, StepMetrics, TaskEntry, TaskType } from '../selfplay/types.ts';
import { ARCHIVE_EXTENSION, readRunArchive, runArchiveBlob } from '../store/archive.ts';
import { encodeCheckpoint } from '../store/checkpoint-codec.ts';
import { encodeSeedSet } from '../store/seed-set.ts';
import type { CheckpointInfo, JsonValue, RunMeta, RunStore } from '../store/types.ts';
import { TABZERO_VERSION } from '../version.ts';
import { exportRunFolder } from './run-export.ts';
import { evalName, parseEvalName } from './session.ts';

export interface ExportOptions {
  /** The loaded base model, for the formats that carry weights (HF, ONNX). */
  base?: { source: ModelSource; model: LoadedModel };
  onProgress?: (done: number, total: number, file: string) => void;
}

export class RunLibrary {
  constructor(
    private readonly store: () => Promise<RunStore>,
    /** Whether a session of this tab trains the run now (a stored 'running' without one was interrupted). */
    private readonly isTraining: (runId: string) => boolean,
  ) {}

  async listRuns(): Promise<RunSummary[]> {
    const store = await this.store();
    const metas = await store.listRuns();
    return Promise.all(
      metas.map(async (m) => ({ ...this.summary(m), bytesUsed: await checkpointBytes(store, m.id) })),
    );
  }

  summary(m: RunMeta): RunSummary {
    return runSummary(m, this.isTraining(m.id));
  }

  async getSteps(runId: string): Promise<StepMetrics[]> {
    return (await (await (await this.store()).readRun(runId)).steps()).map((r) => r.metrics);
  }

  async getEvals(runId: string): Promise<EvalRecord[]> {
    const rows = await (await (await this.store()).readRun(runId)).evals();
    return rows.map((r) => {
      const { set, mode } = parseEvalName(r.name);
      const report = r.result as unknown as EvalRecord['report'];
      return {
        runId,
        step: r.step,
        set,
        mode,
        limit: report.n,
        report,
        at: r.time,
      };
    });
  }

  async getSamples(runId: string, f: SampleFilter): Promise<{ total: number; records: GenerationRecord[] }> {
    const rows = await (await (await this.store()).readRun(runId)).samples(f.step);
    const kept = rows.filter(
      (r) =>
        (f.type === undefined || r.type === f.type) &&
        (f.role === undefined || r.role === f.role) &&
        (f.kind === undefined || r.kind === f.kind) &&
        (f.valid === undefined || r.valid === f.valid) &&
        (f.minReward === undefined || (r.reward ?? -Infinity) >= f.minReward) &&
        (f.maxReward === undefined || (r.reward ?? Infinity) <= f.maxReward),
    );
    const offset = f.offset ?? 0;
    return { total: kept.length, records: kept.slice(offset, offset + (f.limit ?? 200)) };
  }

  async getBuffers(runId: string): Promise<Record<TaskType, TaskEntry[]>> {
    return (await (await this.store()).readRun(runId)).buffers();
  }

  async listCheckpoints(runId: string): Promise<CheckpointSummary[]> {
    return (await (await (await this.store()).readRun(runId)).checkpoints()).map(checkpointSummary);
  }

  /**
   * Continues from an earlier checkpoint without destroying history: a new run holding the history up
   * to that checkpoint's step and the checkpoint itself (named "… from step N").
   */
  async restoreCheckpoint(runId: string, step: number): Promise<RunSummary> {
    const store = await this.store();
    const reader = await store.readRun(runId);
    const data = await reader.exportData();
    const cp = await reader.loadCheckpoint(step);
    const meta = data.meta;
    const blob = await encodeCheckpoint(
      meta,
      { step, tensors: cp.tensors, engineState: cp.engineState, reason: 'manual' },
      cp.runnerState,
    );
    const id = `${runId}-from-${step}-${Date.now().toString(36)}`;
    const name = `${meta.name ?? runId} from step ${step}`;
    const imported = await store.importRun(id, {
      meta: {
        ...meta,
        id,
        step,
        status: 'paused',
        statusMessage: null,
        name,
      },
      state: cp.runnerState,
      steps: data.steps.filter((r) => r.step <= step),
      samples: data.samples.filter((r) => r.step <= step),
      evals: data.evals.filter((r) => r.step <= step),
      seedSet: data.seedSet,
      checkpoint: blob,
    });
    return this.summary(imported);
  }

  /** An export of a run as one file: folders (HF, PEFT, JSONL, ONNX) come as a zip, the archive as a tar. */
  async exportRun(runId: string, format: ExportFormat, opts: ExportOptions): Promise<ExportedFile> {
    const reader = await (await this.store()).readRun(runId);
    const meta = await reader.meta();
    const base = `${meta.name ?? runId}`.replace(/[^\w.-]+/g, '_');
    if (format === 'seed-set') {
      const set = await reader.seedSet();
      if (!set) throw new Error(`Run ${runId} has no seed set yet: it is written when seeding finishes.`);
      return {
        filename: `${base}-seed.jsonl`,
        blob: new Blob([encodeSeedSet(set)], { type: 'application/jsonl' }),
      };
    }
    if (format === 'archive') {
      const blob = await runArchiveBlob(await reader.exportData(), `tabzero ${TABZERO_VERSION}`);
      return { filename: `${base}${ARCHIVE_EXTENSION}`, blob };
    }
    const sink = blobSink('application/zip');
    const zip = new ZipWriter(sink, { prefix: `${base}-${format}/` });
    await exportRunFolder(reader, format, zip, {
      base: opts.base,
      tabzeroVersion: TABZERO_VERSION,
      onProgress: opts.onProgress,
    });
    await zip.finish();
    return { filename: `${base}-${format}.zip`, blob: sink.blob() };
  }

  async importArchive(file: Blob): Promise<RunSummary> {
    const store = await this.store();
    const data = await readRunArchive(blobSource(file, 'run archive'));
    const id = `${data.meta.id}-imported-${Date.now().toString(36)}`;
    const meta = await store.importRun(id, { ...data, meta: { ...data.meta, id } });
    return this.summary(meta);
  }

  async compareRuns(runIds: string[], x: XAxis): Promise<RunComparison> {
    if (new Set(runIds).size < 2) throw new Error('Pick two or more different runs to compare.');
    if (x !== 'steps' && x !== 'sequences') throw new Error(`Unknown x axis "${String(x)}".`);
    const store = await this.store();
    const loaded = await Promise.all(
      runIds.map(async (id) => {
        const reader = await store.readRun(id);
        return loadRunData(reader, (await reader.meta()).name ?? id);
      }),
    );
    // Legends need one label per run: imported copies of a run share its name.
    const seen = new Map<string, number>();
    const runs = loaded.map((run) => {
      const n = (seen.get(run.label) ?? 0) + 1;
      seen.set(run.label, n);
      return n === 1 ? run : { ...run, label: `${run.label} (${n})` };
    });
    return {
      runIds: [...runIds],
      labels: runs.map((r) => r.label),
      xLabel: xAxisLabel(x),
      comparison: compareRuns(runs, x),
      curves: comparisonCurves(runs, x),
    };
  }

  async deleteRun(runId: string): Promise<void> {
    await (await this.store()).deleteRun(runId);
  }

  /** Appends an eval result to the run's history. */
  async commitEval(runId: string, step: number, setName: string, record: EvalRecord): Promise<void> {
    const writer = await (await this.store()).openRun(runId);
    try {
      await writer.commitEval({
        step,
        name: evalName(setName, record.mode),
        result: record.report as unknown as JsonValue,
        time: record.at,
      });
    } finally {
      await writer.close();
    }
  }
}

/** Bytes of a run's checkpoints (weights and optimizer state): most of what a run stores. 0 if unreadable. */
async function checkpointBytes(store: RunStore, runId: string): Promise<number> {
  try {
    const cps = await (await store.readRun(runId)).checkpoints();
    return cps.reduce((n, c) => n + c.weightsBytes + c.stateBytes, 0);
  } catch {
    return 0; // a run the list shows but cannot read: its row says '—'
  }
}

export function checkpointSummary(i: CheckpointInfo): CheckpointSummary {
  return {
    step: i.step,
    bytes: i.weightsBytes + i.stateBytes,
    at: i.createdAt,
    reason: i.reason === 'seeded' ? 'steps' : i.reason,
  };
}

/** A stored run as the page lists it; `trainingHere`: a session of this process trains it now. */
export function runSummary(m: RunMeta, trainingHere: boolean): RunSummary {
  // The store's status is the truth once a session ended; a run still marked running with no active
  // session was interrupted (a closed tab, a killed browser, a lost device): it resumes from its checkpoint.
  const status: RunSummaryStatus = m.status === 'running' && !trainingHere ? 'interrupted' : m.status;
  return {
    id: m.id,
    name: m.name ?? m.id,
    status,
    step: m.step,
    totalSteps: m.config.totalSteps,
    preset: m.preset ?? '',
    config: m.config,
    model: m.model,
    createdAt: m.createdAt,
    updatedAt: m.updatedAt,
    notZeroData: m.notZeroData,
    bytesUsed: 0,
    ...(m.statusMessage ? { error: m.statusMessage } : {}),
  };
}
