// Test doubles for the runner: a ChatML byte tokenizer and a scripted, seeded mock Policy.
import { evaluateProgram, parseProgram } from '../../../src/arith/index.ts';
import type {
  ChatMessage,
  Completion,
  Policy,
  SampleOptions,
  StepStats,
  Tokenizer,
  TrainBatch,
} from '../../../src/policy.ts';
import { Rng } from '../../../src/random.ts';

const SPECIALS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'];
const SPECIAL_BASE = 256;
const SPECIAL_RE = /(<\|endoftext\|>|<\|im_start\|>|<\|im_end\|>)/;

/** Bytes 0..255 plus the three ChatML specials; Qwen2's chat template (TESTING.md). */
export class ChatMLTestTokenizer implements Tokenizer {
  readonly eosTokenIds = [SPECIAL_BASE + 2, SPECIAL_BASE];
  readonly vocabSize = SPECIAL_BASE + SPECIALS.length;
  encode(text: string): number[] {
    const ids: number[] = [];
    for (const part of text.split(SPECIAL_RE)) {
      const special = SPECIALS.indexOf(part);
      if (special >= 0) ids.push(SPECIAL_BASE + special);
      else ids.push(...new TextEncoder().encode(part));
    }
    return ids;
  }
  decode(ids: readonly number[], opts: { skipSpecialTokens?: boolean } = {}): string {
    let out = '';
    let bytes: number[] = [];
    const flush = () => {
      out += new TextDecoder().decode(new Uint8Array(bytes));
      bytes = [];
    };
    for (const id of ids) {
      if (id >= SPECIAL_BASE) {
        flush();
        if (!opts.skipSpecialTokens) out += SPECIALS[id - SPECIAL_BASE];
      } else bytes.push(id);
    }
    flush();
    return out;
  }
  applyChatTemplate(messages: ChatMessage[], opts: { addGenerationPrompt: boolean }): string {
    let s = '';
    if (messages[0]?.role !== 'system') s += '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n';
    for (const m of messages) s += `<|im_start|>${m.role}\n${m.content}<|im_end|>\n`;
    if (opts.addGenerationPrompt) s += '<|im_start|>assistant\n';
    return s;
  }
}

export interface ScriptContext {
  /** Seeded per (call seed, prompt index, sample index): deterministic given the options' seed. */
  rng: Rng;
  callIndex: number;
  promptIndex: number;
}

export type Script = (prompt: string, ctx: ScriptContext) => string;

export interface GenerateCall {
  prompts: string[];
  opts: SampleOptions;
}

/** A Policy whose responses come from a script; records every call. */
export class ScriptedPolicy implements Policy {
  readonly generateCalls: GenerateCall[] = [];
  readonly stepBatches: TrainBatch[] = [];
  constructor(
    private readonly tokenizer: Tokenizer,
    private readonly script: Script,
  ) {}

  async generate(prompts: number[][], opts: SampleOptions): Promise<Completion[]> {
    const callIndex = this.generateCalls.length;
    const texts = prompts.map((p) => this.tokenizer.decode(p));
    this.generateCalls.push({ prompts: texts, opts });
    const out: Completion[] = [];
    texts.forEach((prompt, promptIndex) => {
      for (let k = 0; k < (opts.n ?? 1); k++) {
        const rng = new Rng((opts.seed ^ Math.imul(promptIndex + 1, 0x9e3779b1) ^ (k * 7919)) >>> 0);
        let text = this.script(prompt, { rng, callIndex, promptIndex });
        let stopReason: Completion['stopReason'] = 'stop_token';
        const stop = (opts.stopStrings ?? [])
          .map((s) => [s, text.indexOf(s)] as const)
          .find(([, i]) => i >= 0);
        if (stop) {
          text = text.slice(0, stop[1] + stop[0].length);
          stopReason = 'stop_string';
        }
        let ids = this.tokenizer.encode(text);
        if (stopReason === 'stop_token') ids = [...ids, this.tokenizer.eosTokenIds[0]];
        if (ids.length > opts.maxNew) {
          ids = ids.slice(0, opts.maxNew);
          text = this.tokenizer.decode(ids, { skipSpecialTokens: true });
          stopReason = 'length';
        }
        out.push({
          promptIndex,
          ids,
          text,
          logprobs: new Float32Array(ids.length).fill(-1),
          sampledLogprobs: new Float32Array(ids.length).fill(-1),
          stopReason,
        });
      }
    });
    return out;
  }

  async logprobs(batch: TrainBatch): Promise<Float32Array[]> {
    return batch.sequences.map((s) => new Float32Array(s.completionIds.length).fill(-1));
  }

  async step(batch: TrainBatch): Promise<StepStats> {
    // The engine's contract: a KL term needs the reference log-probs of every sequence.
    if (batch.klBeta > 0 && !batch.sequences.every((s) => s.refLogprobs?.length === s.completionIds.length))
      throw new Error('klBeta > 0 needs refLogprobs on every sequence');
    this.stepBatches.push(batch);
    const tokens = batch.sequences.reduce((a, s) => a + s.completionIds.length, 0);
    const loss =
      -batch.sequences.reduce((a, s) => a + s.advantage * s.completionIds.length, 0) / Math.max(1, tokens);
    return { loss, gradNorm: 0, clipFactor: 1, tokens, entropy: NaN, timeMs: {} };
  }
}

const userText = (prompt: string) => prompt.split('<|im_start|>user\n')[1]?.split('<|im_end|>')[0] ?? prompt;
const wrap = (think: string, answer: string) =>
  `${think}</think>\n<answer>\n${answer}\n</answer>\n<|im_end|>`;

function evalOn(program: string, input: number[]): number | null {
  const p = parseProgram(program);
  if (!p.ok) return null;
  const v = evaluateProgram(p.value, input.map(BigInt));
  return v.ok ? Number(v.value) : null;
}

/**
 * A competent-but-noisy arithmetic model: proposes varied valid tasks most of the time, solves correctly
 * with probability `skill`, and sometimes breaks the format. Everything is drawn from the seeded ctx.rng.
 */
export function arithmeticScript(skill = 0.6): Script {
  return (prompt, { rng }) => {
    const u = userText(prompt);
    if (u.startsWith('## Task: Create a new arithmetic function')) {
      const roll = rng.next();
      if (roll < 0.1) return 'I do not know.';
      const k = rng.int(2, 40);
      const m = rng.int(3, 11);
      const twoVars = rng.next() < 0.5;
      const program = twoVars ? `f(x, y) = (x * ${k} + y) % ${m}` : `f(x) = x * ${k} - ${m}`;
      const input = twoVars ? `${rng.int(-50, 50)}, ${rng.int(-50, 50)}` : `${rng.int(-50, 50)}`;
      return wrap('let me think', `${program}\ninput: ${input}`);
    }
    if (u.startsWith('## Task: Choose')) {
      const n = Number(/Choose (\d+) inputs/.exec(u)![1]);
      const program = u.split('Function:\n')[1].split('\n')[0];
      const arity = program.startsWith('f(x, y)') ? 2 : 1;
      const base = rng.int(-20, 20);
      const lines = Array.from(
        { length: n },
        (_, k) => `input: ${arity === 2 ? `${base + k}, ${k * 3 - 4}` : base + k}`,
      );
      if (rng.next() < 0.15) lines.pop();
      return wrap('choose inputs', `${lines.join('\n')}\nmessage: mixes the numbers`);
    }
    if (u.startsWith('Compute the value of this expression.')) {
      const expr = /Expression: (.*)/.exec(u)?.[1];
      const fn = /Function: (.*)/.exec(u)?.[1];
      const call = /Compute f\((.*)\)\./.exec(u)?.[1];
      const value = expr !== undefined ? evalOn(expr, []) : evalOn(fn!, call!.split(',').map(Number));
      const answer = value !== null && rng.next() < skill ? value : rng.int(-100, 100);
      return rng.next() < 0.1 ? `${answer}` : wrap('compute', String(answer));
    }
    if (u.startsWith('Find an input for the function')) {
      const fn = /Function: (.*)/.exec(u)![1];
      const out = Number(/Output: (.*)/.exec(u)![1]);
      const arity = fn.startsWith('f(x, y)') ? 2 : 1;
      if (rng.next() < skill) {
        for (let x = -60; x <= 60; x++) {
          for (let y = arity === 2 ? -60 : 0; y <= (arity === 2 ? 60 : 0); y++) {
            const input = arity === 2 ? [x, y] : [x];
            if (evalOn(fn, input) === out) return wrap('search', input.join(', '));
          }
        }
      }
      return wrap('guess', arity === 2 ? '1, 2' : '1');
    }
    if (u.startsWith('Find the function f that produced')) {
      const arity = /f\(-?\d+, -?\d+\) =/.test(u) ? 2 : 1;
      if (rng.next() < 0.2) return wrap('no idea', '');
      return wrap('guess', arity === 2 ? 'f(x, y) = x + y' : 'f(x) = x');
    }
    if (u.startsWith('Calculate: ')) return String(rng.int(0, 20));
    return 'unexpected prompt';
  };
}
