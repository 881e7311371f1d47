// The app's side of the ONNX Runtime bridge (issue 9), used by the Lab in the trainer worker: which
// precision to export, the in-memory export (nothing touches storage), the prompts of the check and
// its tolerance, an eval policy on onnxruntime with progress, and the error a tab without enough
// memory gets. onnxruntime-web runs on its WASM backend (CPU), so the worker stays the only GPU owner.
// The Lab imports this file lazily (it pulls in the ONNX protobuf schema, and onnxruntime-web on first
// load), so none of it weighs on training.
import type { LoadedModel } from '../model/model-folder.ts';
import type { FolderSink, ModelSource } from '../model/model-source.ts';
import type { Qwen2Config } from '../model/qwen2-config.ts';
import type { OnnxLora } from '../onnx/lora-merge.ts';
import type { Engine } from '../engine/engine.ts';
import { EngineOracle } from '../onnx/engine-oracle.ts';
import { LOGIT_TOLERANCE, ONNX_CHECK_DEFAULTS, promptParity } from '../onnx/parity.ts';
import { qwen2WeightPlan, VARIANT_FILE, type OnnxVariant } from '../onnx/qwen2-graph.ts';
import { exportOnnx } from '../onnx/export.ts';
import { OnnxGenerator } from '../onnx/generator.ts';
import type { OnnxCausalLM } from '../onnx/runner.ts';
import { loadOnnxWasm, type WasmModelFiles } from '../onnx/web.ts';
import type { Completion, Policy, SampleOptions, Tokenizer } from '../policy.ts';
import type { OnnxPromptCheck, OnnxVariantChoice, UserError } from '../protocol.ts';
import { toEvalItems } from '../selfplay/evalsets.ts';
import { evalPromptText } from '../selfplay/evaluate.ts';
import { renderPrompt } from '../selfplay/prompts.ts';

const ELEM_BYTES: Readonly<Record<OnnxVariant, number>> = { fp32: 4, fp16: 2 };

/** Bytes of an export's external data (the weights; the graph itself is small). */
export function onnxDataBytes(config: Qwen2Config, variant: OnnxVariant): number {
  const elements = qwen2WeightPlan(config).reduce((n, w) => n + w.dims.reduce((a, b) => a * b, 1), 0);
  return elements * ELEM_BYTES[variant];
}

const mb = (bytes: number) => `${Math.round(bytes / 2 ** 20)} MB`;

/** The variant to export: the user's choice, or fp32 unless its weights exceed `fp32MaxBytes`. */
export function chooseOnnxVariant(
  config: Qwen2Config,
  choice: OnnxVariantChoice = 'auto',
): { variant: OnnxVariant; reason: string } {
  if (choice !== 'auto') return { variant: choice, reason: `${choice}, as chosen` };
  const fp32 = onnxDataBytes(config, 'fp32');
  const max = ONNX_CHECK_DEFAULTS.fp32MaxBytes;
  return fp32 <= max
    ? {
        variant: 'fp32',
        reason: `fp32: the weights take ${mb(fp32)}; up to ${mb(max)} fp32 is the lighter and faster choice on onnxruntime-web's CPU backend`,
      }
    : { variant: 'fp16', reason: `fp16: in fp32 the weights would take ${mb(fp32)}, over ${mb(max)}` };
}

/**
 * The logit tolerance of a check: the variant's, or the fp16 one where the engine's KV cache is f16
 * (its default for 16-bit weights), which rounds like the fp16 export (tests/gpu/onnx-parity.test.ts).
 */
export function parityTolerance(variant: OnnxVariant, engineKv: 'f32' | 'f16'): number {
  return Math.max(LOGIT_TOLERANCE[variant], LOGIT_TOLERANCE[engineKv === 'f16' ? 'fp16' : 'fp32']);
}

export interface CheckPrompt {
  label: string;
  ids: number[];
}

/**
 * The prompts of a check: the user's own, each rendered as a user message with the chat template the
 * engine uses for solving; or the first few items of arith_eval_200, rendered as the chat-mode eval does.
 */
export function checkPrompts(tokenizer: Tokenizer, own: readonly string[] = []): CheckPrompt[] {
  const mine = own.map((p) => p.trim()).filter((p) => p !== '');
  if (mine.length > 0)
    return mine.map((text, i) => ({
      label: `your prompt ${i + 1}`,
      ids: tokenizer.encode(renderPrompt(tokenizer, text)),
    }));
  return toEvalItems('arith_eval_200')
    .slice(0, ONNX_CHECK_DEFAULTS.prompts)
    .map((item) => ({ label: item.id, ids: tokenizer.encode(evalPromptText(tokenizer, item, 'chat')) }));
}

/** A tab ran out of memory for the export or for onnxruntime-web's WASM memory. */
export class OnnxMemoryError extends Error {
  override name = 'OnnxMemoryError';
  constructor(
    message: string,
    readonly userError: UserError,
  ) {
    super(message);
  }
}

const MEMORY_FAILURE =
  /RangeError|allocation failed|out of memory|OOM|bad_alloc|failed to allocate|Cannot enlarge memory|memory access out of bounds/i;

function memoryError(variant: OnnxVariant, dataBytes: number, cause: string): OnnxMemoryError {
  const message =
    `Not enough memory for the ONNX Runtime check: the ${variant} export's weights take ${mb(dataBytes)}, ` +
    `held by this tab and copied into onnxruntime-web's WASM memory (at most 4 GiB). (${cause})`;
  return new OnnxMemoryError(message, {
    title: 'Not enough memory for ONNX Runtime',
    message,
    action:
      'Close other tabs and try again, or run `tabzero check-onnx --model DIR --prompts FILE` in Node ' +
      '(onnxruntime-node has no 4 GiB limit).',
  });
}

/** WASM memory onnxruntime-web needs to hold an export (an estimate from measurement). */
export function onnxWasmBytes(config: Qwen2Config, variant: OnnxVariant): number {
  return onnxDataBytes(config, variant) * ONNX_CHECK_DEFAULTS.wasmBytesPerDataByte[variant];
}

/** Refuses exports that cannot fit onnxruntime-web's WASM memory before spending the time on them. */
export function checkOnnxFits(config: Qwen2Config, variant: OnnxVariant): void {
  const need = onnxWasmBytes(config, variant);
  if (need > ONNX_CHECK_DEFAULTS.wasmMaxBytes)
    throw memoryError(
      variant,
      onnxDataBytes(config, variant),
      `it needs about ${mb(need)} of WASM memory, over the ${mb(ONNX_CHECK_DEFAULTS.wasmMaxBytes)} a tab can give it`,
    );
}

/** `err` as an OnnxMemoryError where it is an allocation failure, else unchanged. */
export function asMemoryError(err: unknown, variant: OnnxVariant, dataBytes: number): unknown {
  if (err instanceof OnnxMemoryError) return err;
  const text = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return MEMORY_FAILURE.test(text) ? memoryError(variant, dataBytes, text) : err;
}

export interface MemoryExport {
  files: WasmModelFiles;
  exportMs: number;
}

/** Padding the export may put before each tensor (its data offsets are aligned to 64 bytes). */
const MAX_ALIGN_PAD = 63;

/**
 * The onnx/ folder of an export, in memory. The weights file goes straight into one buffer sized up
 * front: collecting chunks and joining them would hold the weights twice (4 GB for Qwen2-0.5B in fp32).
 */
function memoryOnnxFolder(
  dataFile: string,
  capacity: number,
): FolderSink & { files: Map<string, Uint8Array> } {
  const files = new Map<string, Uint8Array>();
  return {
    files,
    writeFile: async (name, data) => {
      files.set(name, typeof data === 'string' ? new TextEncoder().encode(data) : data.slice());
    },
    createFile: async (name) => {
      if (name !== dataFile) throw new Error(`in-memory ONNX export: unexpected file ${name}`);
      const buffer = new Uint8Array(capacity);
      let at = 0;
      return {
        write: async (chunk) => {
          if (at + chunk.byteLength > capacity)
            throw new Error(`in-memory ONNX export: ${name} outgrew its ${capacity} bytes`);
          buffer.set(chunk, at);
          at += chunk.byteLength;
        },
        close: async () => void files.set(name, buffer.subarray(0, at)),
      };
    },
  };
}

/** Exports `model` (with `lora` merged) as one ONNX variant into memory: the graph and its weights. */
export async function exportOnnxToMemory(
  source: ModelSource,
  model: LoadedModel,
  variant: OnnxVariant,
  lora: OnnxLora | null,
  metadata: Record<string, string>,
  onProgress: (done: number, total: number, name: string) => void,
): Promise<MemoryExport> {
  const file = VARIANT_FILE[variant];
  const capacity =
    onnxDataBytes(model.config, variant) + MAX_ALIGN_PAD * qwen2WeightPlan(model.config).length;
  const onnx = memoryOnnxFolder(`${file}_data`, capacity);
  // Only the graph and its weights are run; config.json and the tokenizer files are not needed here.
  const unused: FolderSink = {
    writeFile: async () => undefined,
    createFile: async (name) => {
      throw new Error(`in-memory ONNX export: unexpected file ${name}`);
    },
  };
  const result = await exportOnnx(
    source,
    model,
    { root: unused, onnx },
    { variants: [variant], lora, metadata, onProgress },
  );
  const bytes = (name: string) => {
    const b = onnx.files.get(name);
    if (!b) throw new Error(`in-memory ONNX export: ${name} was not written`);
    return b;
  };
  return {
    files: { variant, model: bytes(file), data: bytes(`${file}_data`) },
    exportMs: result.elapsedMs,
  };
}

/** Opens an export on onnxruntime-web's WASM backend (`wasmPaths`: the app's own copy of its files). */
export function openOnnxWasm(files: WasmModelFiles, wasmPaths: string | undefined): Promise<OnnxCausalLM> {
  return loadOnnxWasm(files, { wasmPaths, threads: ONNX_CHECK_DEFAULTS.threads });
}

/**
 * OnnxGenerator as the eval's policy, one prompt at a time so that each finished prompt is reported
 * (onnxruntime on one WASM thread decodes a real-size model at a few tokens per second).
 */
export function onnxEvalPolicy(
  lm: OnnxCausalLM,
  tokenizer: Tokenizer,
  onPrompt: (done: number, total: number) => void,
): Pick<Policy, 'generate'> {
  const generator = new OnnxGenerator(lm, tokenizer);
  return {
    async generate(prompts: number[][], opts: SampleOptions): Promise<Completion[]> {
      const out: Completion[] = [];
      for (const [i, prompt] of prompts.entries()) {
        const one = await generator.generate([prompt], opts);
        for (const c of one) out.push({ ...c, promptIndex: i });
        onPrompt(i + 1, prompts.length);
      }
      return out;
    },
  };
}

/**
 * The prompts through the engine (greedy, with its logits) and through onnxruntime (teacher-forced
 * along the engine's tokens, and free-running): src/onnx/parity.ts's comparison, per prompt.
 */
export async function checkPromptsParity(
  engine: Engine,
  lm: OnnxCausalLM,
  tokenizer: Tokenizer,
  prompts: readonly CheckPrompt[],
  opts: { maxNewTokens: number; tolerance: number },
  onPrompt: (done: number, total: number, label: string) => void,
): Promise<OnnxPromptCheck[]> {
  const oracle = new EngineOracle(engine);
  const out: OnnxPromptCheck[] = [];
  for (const [i, prompt] of prompts.entries()) {
    onPrompt(i, prompts.length, prompt.label);
    const p = await promptParity(oracle, lm, prompt.ids, {
      maxNewTokens: opts.maxNewTokens,
      tolerance: opts.tolerance,
      eosIds: tokenizer.eosTokenIds,
    });
    out.push({
      label: prompt.label,
      promptTokens: p.promptTokens,
      completion: tokenizer.decode(p.tokens, { skipSpecialTokens: false }),
      steps: p.steps,
      agree: p.agree,
      decidable: p.decidable,
      agreeDecidable: p.agreeDecidable,
      firstDivergence: p.firstDivergence,
      maxLogitDiff: p.maxLogitDiff,
      pass: p.agreeDecidable === p.decidable && p.maxLogitDiff <= opts.tolerance,
    });
  }
  onPrompt(prompts.length, prompts.length, '');
  return out;
}
