// The one way a run starts, for the app's Lab and the CLI alike: the record a new run is created with,
// the check that a resumed run is on its own model, and a training session wired to the engine's
// trainer, a verifier and the run's writer. What differs (where runs are stored, how events are shown)
// stays with the caller.
import type { RunConfig } from '../config.ts';
import type { Engine } from '../engine/engine.ts';
import { runPromptTemplates } from '../export/templates.ts';
import type { Tokenizer } from '../policy.ts';
import type { TrainerEvent } from '../protocol.ts';
import { createWorkerVerifier, type VerifierWorkerFactory } from '../selfplay/verifier.ts';
import { checkSameModel } from '../store/identity.ts';
import type { ModelIdentity, NewRun, RunWriter, SeedSet } from '../store/types.ts';
import { TABZERO_VERSION } from '../version.ts';
import { TrainingSession, type SessionEvent } from './session.ts';
import { checkpointSummary } from './run-library.ts';
import type { Trainer, TrainerFactory } from './types.ts';

/** A new run's record: its config, the model it trains, this version and its prompt templates. */
export function newRunRecord(
  config: RunConfig,
  model: ModelIdentity,
  opts: { name: string; preset: string; templates?: Record<string, string>; modelPath?: string },
): NewRun {
  return {
    config,
    model,
    tabzeroVersion: TABZERO_VERSION,
    templates: opts.templates ?? runPromptTemplates(config),
    name: opts.name,
    preset: opts.preset,
    ...(opts.modelPath ? { modelPath: opts.modelPath } : {}),
  };
}

/** A session ready to run, and what it holds: `close` releases all of it, the writer included. */
export interface OpenSession {
  session: TrainingSession;
  trainer: Trainer;
  close(): Promise<void>;
}

export interface OpenSessionDeps {
  engine: Engine;
  model: { identity: ModelIdentity; tokenizer: Tokenizer };
  writer: RunWriter;
  createTrainer: TrainerFactory;
  verifierFactory: VerifierWorkerFactory;
  seedSet?: SeedSet;
  onEvent: (e: SessionEvent) => void;
}

/**
 * Opens the run's training session on the loaded engine. Refuses a run trained on other weights; on any
 * failure releases what it made and closes the writer, so the run stays at its last committed step.
 */
export async function openSession(d: OpenSessionDeps): Promise<OpenSession> {
  let trainer: Trainer | null = null;
  try {
    const meta = await d.writer.meta();
    checkSameModel(meta, d.model.identity);
    trainer = await d.createTrainer(d.engine, meta.config);
    const verifier = createWorkerVerifier(d.verifierFactory, meta.config);
    const session = new TrainingSession({
      writer: d.writer,
      seedSet: d.seedSet,
      policy: trainer.policy,
      referencePolicy: trainer.referencePolicy,
      tokenizer: d.model.tokenizer,
      verifier,
      trainable: trainer.trainable,
      onEvent: d.onEvent,
    });
    const t = trainer;
    return {
      session,
      trainer,
      async close() {
        verifier.close();
        t.dispose();
        await d.writer.close();
      },
    };
  } catch (err) {
    trainer?.dispose();
    await d.writer.close();
    throw err;
  }
}

/** A session event as the page receives it (protocol.ts), for the run `runId`. */
export function trainerEvent(runId: string, e: SessionEvent): TrainerEvent {
  switch (e.type) {
    case 'phase':
      return { type: 'phase', progress: { runId, ...e.progress } };
    case 'step':
      return { type: 'step', runId, metrics: e.result.metrics, wallMs: e.wallMs };
    case 'samples':
      return { type: 'samples', runId, records: e.records };
    case 'eval': {
      const { step, time: at } = e.row;
      const { set, mode, report } = e;
      return { type: 'eval', record: { runId, step, set, mode, limit: report.n, report, at } };
    }
    case 'checkpoint':
      return { type: 'checkpoint', runId, checkpoint: checkpointSummary(e.info) };
    case 'log':
      return { type: 'log', level: e.level, message: e.message };
  }
}
