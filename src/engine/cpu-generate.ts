// The `--backend cpu` path of `generate`: the reference forward (plain TypeScript, f32), recomputing the
// whole prefix for every new token. For tiny models only: it is the oracle, not an engine. Greedy
// decoding matches the GPU engine token for token; sampled runs use a host RNG (same seed, same
// samples on the CPU, but not the GPU's samples).
import type { Completion, SampleOptions, Tokenizer } from '../policy.ts';
import { logSumExp } from './reference/ops.ts';
import { qwen2Logits, type RefModelConfig, type RefWeights } from './reference/qwen2.ts';
import { mulberry32 } from '../random.ts';

export function cpuGenerate(
  config: RefModelConfig,
  weights: RefWeights,
  tokenizer: Tokenizer | null,
  prompts: number[][],
  opts: SampleOptions,
): Completion[] {
  const V = config.vocabSize;
  const out: Completion[] = [];
  const stopTokens = new Set(opts.stopTokens ?? tokenizer?.eosTokenIds ?? []);
  const n = opts.n ?? 1;
  let stream = 0;
  for (let i = 0; i < prompts.length; i++) {
    for (let k = 0; k < n; k++) {
      const rng = mulberry32((opts.seed ^ Math.imul(stream++, 0x9e3779b1)) >>> 0);
      const ids: number[] = [];
      const logprobs: number[] = [];
      const sampled: number[] = [];
      let stop: Completion['stopReason'] = 'length';
      let text = '';
      while (ids.length < opts.maxNew) {
        const seq = [...prompts[i], ...ids];
        const { logits } = qwen2Logits(config, weights, [{ ids: seq }]);
        const row = logits.subarray((seq.length - 1) * V, seq.length * V);
        const { token, sampledLp } = pick(row, opts, rng);
        ids.push(token);
        logprobs.push(row[token] - logSumExp(row, 0, V));
        sampled.push(sampledLp);
        if (tokenizer) text = tokenizer.decode(ids, { skipSpecialTokens: true });
        if (stopTokens.has(token)) {
          stop = 'stop_token';
          break;
        }
        const hit = (opts.stopStrings ?? []).find((s) => text.includes(s));
        if (hit !== undefined) {
          stop = 'stop_string';
          text = text.slice(0, text.indexOf(hit) + hit.length);
          break;
        }
      }
      out.push({
        promptIndex: i,
        ids,
        text,
        logprobs: Float32Array.from(logprobs),
        sampledLogprobs: Float32Array.from(sampled),
        stopReason: stop,
      });
    }
  }
  return out;
}

/** Greedy (ties → lowest id), or temperature → top-k → top-p (HF order) and a draw. */
function pick(
  row: ArrayLike<number>,
  opts: SampleOptions,
  rng: () => number,
): { token: number; sampledLp: number } {
  const V = row.length;
  if (opts.temperature <= 0) {
    let best = 0;
    for (let i = 1; i < V; i++) if (row[i] > row[best]) best = i;
    return { token: best, sampledLp: 0 };
  }
  const z = Array.from(row, (l) => l / opts.temperature);
  let order = z.map((_, i) => i).sort((a, b) => z[b] - z[a] || a - b);
  if (opts.topK && opts.topK > 0) order = order.slice(0, opts.topK);
  const zmax = z[order[0]];
  let mass = order.map((i) => Math.exp(z[i] - zmax));
  if (opts.topP !== undefined && opts.topP < 1) {
    const total = mass.reduce((a, b) => a + b, 0);
    let cum = 0;
    let keep = order.length;
    for (let k = 0; k < order.length; k++) {
      cum += mass[k] / total;
      if (cum >= opts.topP) {
        keep = k + 1;
        break;
      }
    }
    order = order.slice(0, keep);
    mass = mass.slice(0, keep);
  }
  const total = mass.reduce((a, b) => a + b, 0);
  let u = rng() * total;
  let k = 0;
  while (k < order.length - 1 && u >= mass[k]) u -= mass[k++];
  return { token: order[k], sampledLp: Math.log(mass[k] / total) };
}
