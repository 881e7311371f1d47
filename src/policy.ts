// The one meeting point of `selfplay` and `engine` (DESIGN.md): types only, imported by both.
// The runner renders prompts with the tokenizer's chat template and hands token ids to the policy.

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface Tokenizer {
  /** Encode text to ids. Special tokens written literally (e.g. `<|im_start|>`) map to their ids. */
  encode(text: string): number[];
  /** Decode ids to text; `skipSpecialTokens` drops `<|im_end|>` and friends. */
  decode(ids: readonly number[], opts?: { skipSpecialTokens?: boolean }): string;
  /** Render messages with the model's own chat template. */
  applyChatTemplate(messages: ChatMessage[], opts: { addGenerationPrompt: boolean }): string;
  /** Ids that end a generation (`<|im_end|>`, `<|endoftext|>` for Qwen2). */
  readonly eosTokenIds: readonly number[];
  readonly vocabSize: number;
}

export interface SampleOptions {
  /** Completions per prompt (default 1). */
  n?: number;
  maxNew: number;
  /** 0 = greedy. */
  temperature: number;
  /** 0 or undefined = off. */
  topK?: number;
  /** 1 or undefined = off. */
  topP?: number;
  /** Same seed, same prompts, same weights → same samples. */
  seed: number;
  /** Generation stops after emitting one of these ids (default: the tokenizer's eos ids). */
  stopTokens?: readonly number[];
  /** Generation stops after the token that completes one of these strings. */
  stopStrings?: readonly string[];
  /**
   * The role whose policy samples (default 'solve'): with separate proposer and solver adapters
   * (config.separateAdapters) proposals use the proposer's adapter, everything else the solver's.
   * A policy with one adapter ignores it.
   */
  role?: 'propose' | 'solve';
}

export type StopReason = 'stop_token' | 'stop_string' | 'length';

export interface Completion {
  /** Index of the prompt this completion belongs to (prompts[i] repeated n times → i). */
  promptIndex: number;
  /** Generated ids, including the stop token / the token that completed a stop string. */
  ids: number[];
  /** Decoded text; cut right after a stop string when one ended the generation. */
  text: string;
  /** log p(token) under the base policy (temperature 1, no top-k/top-p): what training uses. */
  logprobs: Float32Array;
  /** log p(token) under the distribution actually sampled from (temperature, top-k, top-p applied). */
  sampledLogprobs: Float32Array;
  stopReason: StopReason;
}

export interface TrainSequence {
  promptIds: readonly number[];
  completionIds: readonly number[];
  /** One advantage per sequence, applied to every completion token. */
  advantage: number;
  /** logπ_old per completion token; when given, the PPO ratio clip is active (spec 4.7). */
  oldLogprobs?: Float32Array;
  /** logπ_ref per completion token, for the k3 KL term (GRPO, spec 4.11). */
  refLogprobs?: Float32Array;
  /** Which adapter trains on this sequence when proposer and solver have separate adapters. */
  role?: 'propose' | 'solve';
  /**
   * Weight of every loss term of this sequence's tokens (default 1): GRPO's per-sequence length
   * normalisation (loss_type 'grpo') sets 1 / L_i up to the global token mean, for the policy-gradient,
   * KL and entropy terms alike.
   */
  weight?: number;
}

export interface TrainBatch {
  sequences: TrainSequence[];
  /** PPO clip ε (spec 4.7: 0.2). */
  clipEps: number;
  /** Entropy bonus coefficient c_ent; 0 skips the entropy computation. */
  entropyCoef: number;
  /** k3 KL coefficient β against the reference policy; 0 = no KL. */
  klBeta: number;
  /**
   * Sampling temperature T the completions were drawn at (default 1): the policy's and the reference's
   * log-probs and the entropy are taken on logits / T, as TRL and veRL do.
   */
  temperature?: number;
}

export interface StepStats {
  /** The loss value (constant −mean A when ρ ≡ 1; spec section 7 — track logprobs, not this). */
  loss: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** Factor the gradient was scaled by (1 when not clipped). */
  clipFactor: number;
  /** Completion tokens trained on. */
  tokens: number;
  /** Mean entropy over the trained tokens (NaN when not computed). */
  entropy: number;
  /** Mean k3 KL to the reference policy over the trained tokens, before the update (klBeta > 0 only). */
  kl?: number;
  /**
   * Mean logπ of the trained completion tokens under the weights before the update (the imitation loss is
   * its negative); absent where the policy does not report it.
   */
  meanLogprob?: number;
  /** Wall time per phase in ms (forward, backward, optimizer, ...). */
  timeMs: Record<string, number>;
}

export interface Policy {
  generate(prompts: number[][], opts: SampleOptions): Promise<Completion[]>;
  /** Teacher-forced log p of each completion token (base policy), one array per sequence. */
  logprobs(batch: TrainBatch): Promise<Float32Array[]>;
  /** One optimizer step on (prompt, completion, advantage) triples. */
  step(batch: TrainBatch): Promise<StepStats>;
}
