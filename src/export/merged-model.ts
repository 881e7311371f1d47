// Export (a): the base model with the LoRA adapter merged in, as a Hugging Face folder that Python
// `transformers` loads: config.json (torch_dtype updated for f32), generation_config.json and the
// tokenizer files copied byte for byte from the base, model.safetensors with the base's tensor names
// and order (`__metadata__.format = "pt"`), and tabzero.json. W' = W + (alpha/r)·B·A for every adapted
// projection, computed in f64 per row and written in the base's dtype (bf16/f16 rounded to nearest
// even) or in f32. Streams block by block: memory stays at a few MB whatever the model size (the real
// model is 988 MB in bf16, ~2 GB in f32). Browser-safe.

import { checkLoraShapes, type HostLora, type LoraPair } from '../model/lora.ts';
import { readText } from '../model/byte-source.ts';
import { DTYPE_BYTES, decodeFloats, encodeFloats, isFloatDType, type DType } from '../model/dtype.ts';
import { WEIGHTS_FILE } from '../model/model-folder.ts';
import type { FolderSink, ModelSource } from '../model/model-source.ts';
import { checkWeightsAgainstConfig, parseQwen2Config } from '../model/qwen2-config.ts';
import { openSafetensors, type SafetensorsFile } from '../model/safetensors-read.ts';
import { writeSafetensors, type TensorSpec } from '../model/safetensors-write.ts';
import {
  buildManifest,
  loraOfConfig,
  MANIFEST_FILE,
  manifestJson,
  type ExportProvenance,
} from './manifest.ts';
import { addLoraDelta } from './merge.ts';

/** Files copied from the base folder when present (tokenizer.json and tokenizer_config.json must be). */
export const COPIED_FILES = [
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'vocab.json',
  'merges.txt',
  'special_tokens_map.json',
  'added_tokens.json',
] as const;
const REQUIRED_FILES = ['config.json', 'tokenizer.json', 'tokenizer_config.json', WEIGHTS_FILE];

/** Elements converted per block: bounds memory (a block is at most 4 MB of f32 plus an f64 row). */
const BLOCK_ELEMENTS = 1 << 20;

const TORCH_DTYPE: Record<string, string> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };

export interface MergedExportOptions {
  /** 'base': each tensor in the base's dtype (bf16 rounds away much of a small delta); 'f32': all f32. */
  dtype: 'base' | 'f32';
  provenance: ExportProvenance;
  /**
   * Refuse a base whose weights' SHA-256 differs from provenance.base.sha256, when the source knows
   * the hash cheaply (hub download, Node folder). Default true.
   */
  checkBaseSha256?: boolean;
  onTensor?: (done: number, total: number, name: string) => void;
  /** Elements per converted block (default BLOCK_ELEMENTS); tests make it small to cross block edges. */
  blockElements?: number;
}

export interface MergedExportResult {
  /** Files written, tabzero.json included. */
  files: string[];
  /** Weight tensors that received a LoRA delta. */
  mergedTensors: string[];
  tensorCount: number;
  safetensorsBytes: number;
}

function prettyJson(v: unknown): string {
  return JSON.stringify(v, null, 2) + '\n';
}

/** Bytes of [first, first + count) elements of a tensor. */
function readElements(
  weights: SafetensorsFile,
  name: string,
  first: number,
  count: number,
): Promise<Uint8Array> {
  const t = weights.tensor(name);
  const size = DTYPE_BYTES[t.dtype];
  return weights.source.read(t.offset + first * size, count * size);
}

async function* convertedTensor(
  weights: SafetensorsFile,
  spec: TensorSpec,
  pair: LoraPair | undefined,
  blockElements: number,
): AsyncGenerator<Uint8Array> {
  const info = weights.tensor(spec.name);
  if (!pair && info.dtype === spec.dtype) {
    yield* weights.stream(spec.name);
    return;
  }
  if (!isFloatDType(info.dtype) || !isFloatDType(spec.dtype))
    throw new Error(`export: cannot convert ${spec.name} from ${info.dtype} to ${spec.dtype}`);
  const total = info.shape.reduce((a, b) => a * b, 1);
  // A merged weight is [out, in]: blocks hold whole rows so each row's delta is computed once.
  const rowLen = pair ? info.shape[1] : 1;
  const rowsPerBlock = Math.max(1, Math.floor(blockElements / rowLen));
  const acc = pair ? new Float64Array(rowLen) : undefined;
  for (let first = 0; first < total; first += rowsPerBlock * rowLen) {
    const count = Math.min(rowsPerBlock * rowLen, total - first);
    const values = decodeFloats(await readElements(weights, spec.name, first, count), info.dtype);
    if (pair) addLoraDelta(values, first / rowLen, rowLen, pair, acc);
    // decodeFloats returns a fresh array per block, so the F32 view handed out is never overwritten.
    yield encodeFloats(values, spec.dtype);
  }
}

export async function exportMergedModel(
  base: ModelSource,
  lora: HostLora,
  opts: MergedExportOptions,
  out: FolderSink,
): Promise<MergedExportResult> {
  const present = new Set(await base.list());
  for (const f of REQUIRED_FILES)
    if (!present.has(f)) throw new Error(`export: ${base.description} has no ${f}`);
  const configText = await readText(await base.open('config.json'));
  const configRaw = JSON.parse(configText) as Record<string, unknown>;
  const config = parseQwen2Config(configRaw);
  const weights = await openSafetensors(await base.open(WEIGHTS_FILE), WEIGHTS_FILE);
  checkWeightsAgainstConfig(weights, config);
  checkLoraShapes(config, lora);

  const expected = opts.provenance.base.sha256;
  if (opts.checkBaseSha256 !== false && base.knownSha256) {
    const actual = await base.knownSha256(WEIGHTS_FILE);
    if (actual !== null && actual !== expected)
      throw new Error(
        `export: ${base.description} is not the run's base model (weights SHA-256 ${actual}, run recorded ${expected})`,
      );
  }

  const pairs = new Map<string, LoraPair>();
  for (const [module, pair] of Object.entries(lora)) pairs.set(`${module}.weight`, pair);
  const specs: TensorSpec[] = weights.tensors.map((t) => ({
    name: t.name,
    shape: t.shape,
    dtype: opts.dtype === 'f32' && isFloatDType(t.dtype) ? 'F32' : (t.dtype as DType),
  }));

  const files: string[] = [];
  // Same dtype: the base's config.json byte for byte (re-serialising would turn 1e-6 into 0.000001, 0.0 into 0).
  await out.writeFile(
    'config.json',
    opts.dtype === 'f32' ? prettyJson({ ...configRaw, torch_dtype: TORCH_DTYPE.F32 }) : configText,
  );
  files.push('config.json');
  for (const f of COPIED_FILES) {
    if (!present.has(f)) continue;
    const src = await base.open(f);
    await out.writeFile(f, await src.read(0, src.size));
    files.push(f);
  }

  let done = 0;
  const sink = await out.createFile(WEIGHTS_FILE);
  const plan = await writeSafetensors(
    sink,
    specs,
    async function* (spec) {
      yield* convertedTensor(weights, spec, pairs.get(spec.name), opts.blockElements ?? BLOCK_ELEMENTS);
      opts.onTensor?.(++done, specs.length, spec.name);
    },
    { generator: 'tabzero export' },
  );
  files.push(WEIGHTS_FILE);

  const weightDtypes = [...new Set(specs.filter((s) => isFloatDType(s.dtype)).map((s) => s.dtype))];
  const adapted = Object.keys(lora).length > 0;
  const manifest = buildManifest('hf-merged', opts.provenance, {
    lora: adapted ? loraOfConfig(opts.provenance.runConfig) : null,
    dtype: weightDtypes.join('+'),
    files,
  });
  await out.writeFile(MANIFEST_FILE, manifestJson(manifest));
  files.push(MANIFEST_FILE);
  return {
    files,
    mergedTensors: [...pairs.keys()],
    tensorCount: specs.length,
    safetensorsBytes: plan.fileSize,
  };
}
