// The shape of the engine a run loads (KV-cache slots, positions per sequence, bytes per weight): one
// function for the CLI, the memory estimate and the tests; the app loads one engine for every run.
import type { RunConfig } from '../config.ts';

export interface EngineShape {
  /** KV-cache slots (sequences decoded together). */
  maxBatch: number;
  /** Positions per sequence. */
  maxSeqLen: number;
  /** Bytes per weight element as the engine runs them (2 for f16/bf16, 4 for f32). */
  weightBytes: 2 | 4;
}

/** Sequence length a run needs: the longest prompt the presets render plus the longest completion. */
export const PROMPT_TOKENS_BUDGET = 704;
/**
 * Longest workshop-family prompt, in byte tokens: a proposer prompt with two references whose programs
 * are at the workshop bounds' longest (~280; the curriculum test builds that worst case), with margin.
 */
export const WORKSHOP_PROMPT_TOKENS = 320;
/**
 * Longest imitation record (workshop prompt + target completion), in tokens: the curriculum's own
 * references are short, so its longest record is ~260 (20,000 drawn at seed 7: 259).
 */
export const IMITATION_SEQ_LEN = 320;

/**
 * The engine a run needs: KV slots for its largest generation batch, positions for its longest prompt
 * plus completion (at most the model's `maxPositions`), at `weightBytes` per weight.
 */
export function engineShape(config: RunConfig, weightBytes: 2 | 4, maxPositions = Infinity): EngineShape {
  const maxNew = Math.max(config.maxProposerTokens, config.maxSolverTokens, config.evalMaxNewChat);
  const promptBudget = config.promptFamily === 'workshop' ? WORKSHOP_PROMPT_TOKENS : PROMPT_TOKENS_BUDGET;
  const maxSeqLen = config.mode === 'imitation' ? IMITATION_SEQ_LEN : promptBudget + maxNew;
  const perStep =
    config.mode === 'imitation' ? config.imitationBatch : config.batchPerGroup * Math.max(1, config.nEst);
  const maxBatch = Math.min(64, Math.max(1, perStep));
  return { maxBatch, maxSeqLen: Math.min(maxSeqLen, maxPositions), weightBytes };
}

/** The app's engine, loaded with the model before any run is chosen: enough for every preset it offers. */
export const APP_ENGINE_SHAPE = { maxBatch: 32, maxSeqLen: 1024 } as const;
