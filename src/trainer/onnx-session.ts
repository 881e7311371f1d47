// The loaded weights in onnxruntime-web (issue 9): exported to ONNX in memory (a checkpoint's adapter
// merged), opened once and reused while model, checkpoint and variant stay; one call at a time, as the
// calls share the one open export. Used by the ONNX eval backend, the parity check and the bench page.
import { ONNX_CHECK_DEFAULTS } from '../onnx/parity.ts';
import type { OnnxVariant } from '../onnx/qwen2-graph.ts';
import type { OnnxCausalLM } from '../onnx/runner.ts';
import type { Policy } from '../policy.ts';
import type {
  OnnxCheckReport,
  OnnxCheckRequest,
  OnnxExportFiles,
  OnnxExportInfo,
  OnnxProgress,
  OnnxVariantChoice,
  TrainerEvent,
} from '../protocol.ts';
import { checkpointAdapter } from './engine-trainer.ts';
import type { MemoryExport } from './onnx-bridge.ts';
import type { LoadedState, WeightsCheckpoint } from './types.ts';

/** The Lab's way to run with a request's weights (the base, or a run's checkpoint). */
export type WithWeights = <T>(
  req: { runId?: string; checkpointStep?: number },
  fn: (policy: Policy, step: number, checkpoint: WeightsCheckpoint | null) => Promise<T>,
) => Promise<T>;

/** The ONNX export of the loaded weights, open in onnxruntime-web. */
interface OpenExport {
  key: string;
  lm: OnnxCausalLM;
  info: Omit<OnnxExportInfo, 'reused'>;
}

export class OnnxSession {
  private open: OpenExport | null = null;
  /** The tail of the ONNX calls: one at a time. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly deps: {
      requireModel: () => LoadedState;
      emit: (e: TrainerEvent) => void;
      wasmPaths?: string;
    },
  ) {}

  progress(phase: OnnxProgress['phase'], done: number, total: number, message: string): void {
    this.deps.emit({ type: 'onnx-progress', progress: { phase, done, total, message } });
  }

  oneAtATime<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  async release(): Promise<void> {
    const old = this.open;
    this.open = null;
    await old?.lm.release().catch(() => undefined);
  }

  /**
   * The loaded weights (with `checkpoint`'s adapter merged) exported to ONNX in memory and opened in
   * onnxruntime-web: reused while the model, the checkpoint and the variant stay the same.
   */
  async openFor(
    checkpoint: WeightsCheckpoint | null,
    choice: OnnxVariantChoice | undefined,
  ): Promise<{ lm: OnnxCausalLM; info: OnnxExportInfo }> {
    const { model } = this.deps.requireModel();
    const bridge = await import('./onnx-bridge.ts');
    const { variant, reason } = bridge.chooseOnnxVariant(model.config, choice);
    const key = [model.identity.sha256, checkpoint?.runId ?? '', checkpoint?.step ?? 0, variant].join('|');
    if (this.open?.key === key) return { lm: this.open.lm, info: { ...this.open.info, reused: true } };
    await this.release();
    const { exported, weights } = await this.exportInMemory(variant, checkpoint);
    try {
      this.progress('load', 0, 1, 'Loading the export into ONNX Runtime (WASM)');
      const started = performance.now();
      const lm = await bridge.openOnnxWasm(exported.files, this.deps.wasmPaths);
      const info = {
        variant,
        variantReason: reason,
        weights,
        runId: checkpoint?.runId ?? '',
        step: checkpoint?.step ?? 0,
        modelBytes: exported.files.model.byteLength,
        dataBytes: exported.files.data.byteLength,
        exportMs: exported.exportMs,
        loadMs: performance.now() - started,
      };
      this.progress('load', 1, 1, 'Loaded into ONNX Runtime');
      this.open = { key, lm, info };
      return { lm, info: { ...info, reused: false } };
    } catch (err) {
      throw bridge.asMemoryError(err, variant, exported.files.data.byteLength);
    }
  }

  /**
   * The loaded model (with `checkpoint`'s adapter merged) exported to ONNX in memory, with progress
   * events; refused up front where it cannot fit, and an allocation failure told as a memory error.
   */
  private async exportInMemory(
    variant: OnnxVariant,
    checkpoint: WeightsCheckpoint | null,
  ): Promise<{ exported: MemoryExport; weights: string }> {
    const { source, model } = this.deps.requireModel();
    const bridge = await import('./onnx-bridge.ts');
    bridge.checkOnnxFits(model.config, variant);
    const adapter = checkpoint ? checkpointAdapter(checkpoint.tensors, checkpoint.engineState) : null;
    const weights = adapter
      ? `${model.identity.repo} with run ${checkpoint!.runId}'s ${adapter.name} at step ${checkpoint!.step} merged`
      : `${model.identity.repo} (base)`;
    try {
      const exported = await bridge.exportOnnxToMemory(
        source,
        model,
        variant,
        adapter?.lora ?? null,
        checkpoint ? { 'tabzero.run': checkpoint.runId, 'tabzero.step': String(checkpoint.step) } : {},
        (done, total, name) => this.progress('export', done, total, `Exporting ${variant} to ONNX: ${name}`),
      );
      return { exported, weights };
    } catch (err) {
      throw bridge.asMemoryError(err, variant, bridge.onnxDataBytes(model.config, variant));
    }
  }

  /** The check of issue 9: the engine and onnxruntime-web decode the same prompts with the same weights. */
  async check(req: OnnxCheckRequest, withWeights: WithWeights): Promise<OnnxCheckReport> {
    const { engine, model } = this.deps.requireModel();
    const bridge = await import('./onnx-bridge.ts');
    const prompts = bridge.checkPrompts(model.tokenizer, req.prompts);
    const maxNewTokens = req.maxNewTokens ?? ONNX_CHECK_DEFAULTS.maxNewTokens;
    if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1)
      throw new Error(`The check needs at least 1 new token per prompt, not ${maxNewTokens}.`);
    const maxLen = engine.forward.limits.maxLen;
    const longest = prompts.reduce((m, p) => Math.max(m, p.ids.length), 0);
    if (longest + maxNewTokens > maxLen)
      throw new Error(
        `A prompt of ${longest} tokens plus ${maxNewTokens} new tokens exceeds the engine's ${maxLen} positions: ` +
          'use a shorter prompt or fewer new tokens.',
      );
    return withWeights(req, async (_policy, _step, checkpoint) => {
      const { lm, info } = await this.openFor(checkpoint, req.variant);
      const engineKv = engine.forward.limits.kvDType;
      const tolerance = bridge.parityTolerance(info.variant, engineKv);
      const results = await bridge.checkPromptsParity(
        engine,
        lm,
        model.tokenizer,
        prompts,
        { maxNewTokens, tolerance },
        (done, total, label) =>
          this.progress(
            'prompt',
            done,
            total,
            done < total ? `Prompt ${done + 1} of ${total}: ${label}` : 'Done',
          ),
      );
      return {
        export: info,
        engineKv,
        tolerance,
        maxNewTokens,
        prompts: results,
        pass: results.every((p) => p.pass),
        at: new Date().toISOString(),
      };
    });
  }

  /** The loaded base model as ONNX bytes in memory (the bench page opens them on its own device). */
  async exportFiles(choice: OnnxVariantChoice): Promise<OnnxExportFiles> {
    const { model } = this.deps.requireModel();
    const bridge = await import('./onnx-bridge.ts');
    const { variant, reason } = bridge.chooseOnnxVariant(model.config, choice);
    const { exported } = await this.exportInMemory(variant, null);
    const { model: bytes, data } = exported.files;
    return { variant, variantReason: reason, model: bytes, data, exportMs: exported.exportMs };
  }
}
