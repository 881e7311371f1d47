// The one way a run starts, for the app's Lab and the CLI alike: the record a new run is created with,
// the check that a resumed run is on its own model, and a training session wired to the engine's
// trainer, a verifier and the run's writer. What differs (where runs are stored, how events are shown)
// stays with the caller.
import type { RunConfig } from '../config.ts';
import type { Engine } from '../engine/engine.ts';
import { runPromptTemplates } from '../export/templates.ts';
import type { Policy, Tokenizer } from '../policy.ts';
import type { RunPhase, TrainerEvent } from '../protocol.ts';
import { createWorkerVerifier, type Verifier, type VerifierWorkerFactory } from '../selfplay/verifier.ts';
import { checkSameModel } from '../store/identity.ts';
import type { ModelIdentity, NewRun, RunWriter, SeedSet } from '../store/types.ts';
import { TABZERO_VERSION } from '../version.ts';
import { TrainingSession, type SessionEvent, type TrainableState } from './session.ts';
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
  /** Tests only: hold forever at this phase's first GPU, verifier or checkpoint call (see withHold). */
  hold?: RunPhase;
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
    const held = d.hold ? withHold(d.hold, d.onEvent, trainer, verifier) : null;
    const session = new TrainingSession({
      writer: d.writer,
      seedSet: d.seedSet,
      policy: held?.policy ?? trainer.policy,
      referencePolicy: trainer.referencePolicy,
      tokenizer: d.model.tokenizer,
      verifier: held?.verifier ?? verifier,
      trainable: held?.trainable ?? trainer.trainable,
      onEvent: held?.onEvent ?? d.onEvent,
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

/**
 * Issue 19's kill tests: wraps the session's policy, verifier and trainable so that the first call made
 * while the run is in phase `hold` never returns (the browser is then killed there). It logs the hold
 * first, so the test, and the event log, show where the kill landed.
 */
function withHold(
  hold: RunPhase,
  onEvent: (e: SessionEvent) => void,
  trainer: Trainer,
  verifier: Verifier,
): { policy: Policy; verifier: Verifier; trainable: TrainableState; onEvent: (e: SessionEvent) => void } {
  let phase: RunPhase | null = null;
  let step = 0;
  const gate = <T>(call: () => Promise<T>): Promise<T> => {
    if (phase !== hold) return call();
    onEvent({ type: 'log', level: 'warn', message: `test hold point: holding at ${hold} of step ${step}` });
    return new Promise<T>(() => undefined);
  };
  const p = trainer.policy;
  return {
    policy: {
      generate: (prompts, opts) => gate(() => p.generate(prompts, opts)),
      logprobs: (batch) => p.logprobs(batch),
      step: (batch) => gate(() => p.step(batch)),
    },
    verifier: { verify: (jobs) => gate(() => verifier.verify(jobs)), close: () => verifier.close() },
    trainable: {
      save: () => gate(() => trainer.trainable.save()),
      load: (t, s) => trainer.trainable.load(t, s),
      reset: (seed) => trainer.trainable.reset(seed),
    },
    onEvent: (e) => {
      if (e.type === 'phase') ({ phase, step } = e.progress);
      onEvent(e);
    },
  };
}
