// The bench page's engine side (issue 9): one greedy decode of the bench workload on the loaded base
// model, after a short warm-up that compiles the pipelines, with the engine's own counters.
import type { Engine } from '../engine/engine.ts';
import type { DecodeBenchRequest, EngineDecodeBench } from '../protocol.ts';

export async function benchDecode(engine: Engine, req: DecodeBenchRequest): Promise<EngineDecodeBench> {
  if (req.promptIds.length === 0 || req.newTokens < 1)
    throw new Error('The bench needs a non-empty prompt and at least one new token.');
  const opts = { temperature: 0, seed: 0, stopTokens: [] };
  engine.loraEnabled = false;
  await engine.generate([req.promptIds.slice(0, 4)], { ...opts, maxNew: 2 });
  engine.resetStats();
  // maxNew counts the token the prefill picks: one more than the decode steps.
  const [c] = await engine.generate([req.promptIds], { ...opts, maxNew: req.newTokens + 1 });
  const st = engine.stats;
  const r = engine.ctx.report;
  return {
    adapter: [r.vendor, r.architecture, r.description].filter(Boolean).join(' ') || 'unknown adapter',
    weightDType: engine.weights.dtype,
    kvDType: engine.forward.limits.kvDType,
    promptTokens: req.promptIds.length,
    decodeSteps: st.decodeSteps,
    prefillMs: st.prefillMs,
    decodeMs: st.decodeMs,
    prefillTokensPerSecond: req.promptIds.length / (st.prefillMs / 1000),
    decodeTokensPerSecond: st.decodeSteps ? st.decodeTokens / (st.decodeMs / 1000) : 0,
    dispatchesPerStep: st.decodeSteps ? st.decodeDispatches / st.decodeSteps : 0,
    readbacksPerStep: st.decodeSteps ? st.decodeReadbacks / st.decodeSteps : 0,
    ids: c.ids,
  };
}
