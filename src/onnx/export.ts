// `exportOnnx`: writes a Qwen2 model folder as a transformers.js model folder —
//   config.json (+ "transformers.js_config" naming the external data), generation_config.json,
//   tokenizer.json, tokenizer_config.json, onnx/model.onnx + onnx/model.onnx_data (fp32),
//   onnx/model_fp16.onnx + onnx/model_fp16.onnx_data (fp16)
// reading each weight once, optionally merging a LoRA adapter into it first (a trained model exports
// merged), and writing every variant's data file in the same pass. Memory: one tensor at a time
// (the largest, the real embedding, is 544 MB in f32). Browser-safe (sinks are injected).

import { decodeFloats, encodeFloats, isFloatDType, type FloatDType } from '../model/dtype.ts';
import type { LoadedModel } from '../model/model-folder.ts';
import type { FolderSink, ModelSource } from '../model/model-source.ts';
import { readText } from '../model/byte-source.ts';
import type { ByteSink } from '../model/safetensors-write.ts';
import { encodeModel, externalTensor, type TensorProto } from './proto.ts';
import { mergeLora, validateLora, type OnnxLora } from './lora-merge.ts';
import {
  buildQwen2Graph,
  qwen2WeightPlan,
  VARIANT_ELEM,
  VARIANT_FILE,
  type OnnxVariant,
} from './qwen2-graph.ts';

export type { OnnxVariant } from './qwen2-graph.ts';
export type { OnnxLora } from './lora-merge.ts';

/** Where the export goes: the folder itself and its `onnx/` subfolder (transformers.js's layout). */
export interface OnnxExportTarget {
  root: FolderSink;
  onnx: FolderSink;
}

export interface ExportOnnxOptions {
  /** Default: both. */
  variants?: readonly OnnxVariant[];
  /** LoRA pairs to merge into the base weights (module name → A, B, rank, scale). */
  lora?: OnnxLora | null;
  /** Extra `metadata_props` of the ONNX model (run id, seed, ...). */
  metadata?: Record<string, string>;
  /** After each weight: (done, total, name). */
  onProgress?: (done: number, total: number, name: string) => void;
}

export interface OnnxVariantFiles {
  variant: OnnxVariant;
  /** Paths relative to the folder, e.g. `onnx/model_fp16.onnx`. */
  modelFile: string;
  dataFile: string;
  modelBytes: number;
  dataBytes: number;
}

export interface OnnxExportResult {
  variants: OnnxVariantFiles[];
  /** Every file written, relative to the folder. */
  files: string[];
  elapsedMs: number;
}

/** External data offsets are aligned so every tensor can be mapped and read in place. */
const DATA_ALIGN = 64;
const TEXT_FILES = ['generation_config.json', 'tokenizer.json', 'tokenizer_config.json'] as const;

/** config.json with transformers.js's pointer to the external data (one chunk per variant). */
export function transformersJsConfig(
  model: LoadedModel,
  variants: readonly OnnxVariant[],
): Record<string, unknown> {
  const raw = { ...model.config.raw } as Record<string, unknown>;
  const prior = (raw['transformers.js_config'] ?? {}) as Record<string, unknown>;
  raw['transformers.js_config'] = {
    ...prior,
    use_external_data_format: Object.fromEntries(variants.map((v) => [VARIANT_FILE[v], 1])),
  };
  return raw;
}

/** A weight as f32, with LoRA merged and the transpose applied. */
async function preparedWeight(
  model: LoadedModel,
  source: string,
  transpose: boolean,
  lora: OnnxLora | null,
): Promise<Float32Array> {
  const info = model.weights.tensor(source);
  if (!isFloatDType(info.dtype)) throw new Error(`${source}: dtype ${info.dtype} is not a float type`);
  let values = decodeFloats(await model.weights.read(source), info.dtype);
  const moduleName = source.replace(/\.weight$/, '');
  const pair = lora?.[moduleName];
  if (pair) values = mergeLora(values, info.shape[1], pair);
  if (!transpose) return values;
  const [rows, cols] = info.shape;
  const out = new Float32Array(values.length);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[c * rows + r] = values[r * cols + c];
  }
  return out;
}

const SINK_DTYPE: Readonly<Record<OnnxVariant, FloatDType>> = { fp32: 'F32', fp16: 'F16' };

export async function exportOnnx(
  source: ModelSource,
  model: LoadedModel,
  target: OnnxExportTarget,
  opts: ExportOnnxOptions = {},
): Promise<OnnxExportResult> {
  const started = performance.now();
  const variants = [...new Set(opts.variants ?? (['fp32', 'fp16'] as const))];
  if (variants.length === 0) throw new Error('exportOnnx: no variants requested');
  const lora = opts.lora ?? null;
  if (lora) validateLora(model.config, lora);
  const plan = qwen2WeightPlan(model.config);

  const sinks = new Map<OnnxVariant, { sink: ByteSink; offset: number; tensors: TensorProto[] }>();
  for (const v of variants) {
    sinks.set(v, { sink: await target.onnx.createFile(`${VARIANT_FILE[v]}_data`), offset: 0, tensors: [] });
  }
  try {
    for (let i = 0; i < plan.length; i++) {
      const w = plan[i];
      const values = await preparedWeight(model, w.source, w.transpose, lora);
      for (const v of variants) {
        const out = sinks.get(v)!;
        const bytes = encodeFloats(values, SINK_DTYPE[v]);
        const pad = (DATA_ALIGN - (out.offset % DATA_ALIGN)) % DATA_ALIGN;
        if (pad > 0) await out.sink.write(new Uint8Array(pad));
        out.offset += pad;
        out.tensors.push(
          externalTensor(
            w.name,
            VARIANT_ELEM[v],
            w.dims,
            `${VARIANT_FILE[v]}_data`,
            out.offset,
            bytes.byteLength,
          ),
        );
        await out.sink.write(bytes);
        out.offset += bytes.byteLength;
      }
      opts.onProgress?.(i + 1, plan.length, w.source);
    }
  } finally {
    for (const { sink } of sinks.values()) await sink.close();
  }

  const metadata: Record<string, string> = {
    'tabzero.source_repo': model.identity.repo,
    'tabzero.source_revision': model.identity.revision,
    'tabzero.source_sha256': model.identity.sha256,
    'tabzero.lora_merged': lora ? String(Object.keys(lora).length) : '0',
    ...opts.metadata,
  };
  const results: OnnxVariantFiles[] = [];
  for (const v of variants) {
    const { tensors, offset } = sinks.get(v)!;
    const bytes = encodeModel(buildQwen2Graph(model.config, v, tensors, metadata));
    await target.onnx.writeFile(VARIANT_FILE[v], bytes);
    results.push({
      variant: v,
      modelFile: `onnx/${VARIANT_FILE[v]}`,
      dataFile: `onnx/${VARIANT_FILE[v]}_data`,
      modelBytes: bytes.byteLength,
      dataBytes: offset,
    });
  }

  const json = (v: unknown): string => JSON.stringify(v, null, 2) + '\n';
  await target.root.writeFile('config.json', json(transformersJsConfig(model, variants)));
  const present = new Set(await source.list());
  const copied: string[] = [];
  for (const file of TEXT_FILES) {
    if (!present.has(file)) continue;
    await target.root.writeFile(file, await readText(await source.open(file)));
    copied.push(file);
  }
  return {
    variants: results,
    files: ['config.json', ...copied, ...results.flatMap((r) => [r.modelFile, r.dataFile])],
    elapsedMs: performance.now() - started,
  };
}
