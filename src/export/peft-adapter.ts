// Export (b): the LoRA adapter as a PEFT folder that Python `peft` loads (PeftModel.from_pretrained and
// AutoPeftModelForCausalLM): adapter_model.safetensors with PEFT's tensor names
// (`base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight` [r, in], `...lora_B.weight`
// [out, r], f32, `__metadata__.format = "pt"`), adapter_config.json in PEFT's own keys, and
// tabzero.json. Browser-safe.

import type { LoraTarget } from '../config.ts';
import {
  checkLoraShapes,
  moduleName,
  peftTensorName,
  TARGET_PROJECTION,
  type HostLora,
  type LoraShapeConfig,
} from '../model/lora.ts';
import { encodeFloats, type FloatArray } from '../model/dtype.ts';
import type { FolderSink } from '../model/model-source.ts';
import { writeSafetensors, type TensorSpec } from '../model/safetensors-write.ts';
import { buildManifest, MANIFEST_FILE, manifestJson, type ExportProvenance } from './manifest.ts';

export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';
export const ADAPTER_CONFIG_FILE = 'adapter_config.json';

/** Relative difference tolerated between a pair's scale and the config's alpha / rank (f32 rounding). */
const SCALE_REL_TOLERANCE = 1e-6;

export interface PeftExportOptions {
  provenance: ExportProvenance;
  /** The base model's shapes and layer count (LoadedModel.config fits). */
  model: LoraShapeConfig;
  /**
   * `base_model_name_or_path`: where `AutoPeftModelForCausalLM` finds the base. Default: the base's hub
   * repo (provenance.base.repo); pass a folder path for a local base (repo `local/...`).
   */
  baseModelNameOrPath?: string;
}

export interface PeftExportResult {
  files: string[];
  tensorCount: number;
  adapterBytes: number;
}

/**
 * adapter_config.json. Only keys every PEFT release since 0.7 knows (older ones refuse unknown keys);
 * the rest take PEFT's defaults, which match what TabZero trains (no dropout at export, no bias, no
 * rsLoRA or DoRA, every layer adapted).
 */
export function adapterConfigJson(opts: {
  rank: number;
  alpha: number;
  targets: readonly LoraTarget[];
  baseModelNameOrPath: string;
  revision: string | null;
}): Record<string, unknown> {
  return {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    base_model_name_or_path: opts.baseModelNameOrPath,
    revision: opts.revision,
    r: opts.rank,
    lora_alpha: opts.alpha,
    lora_dropout: 0.0,
    target_modules: [...opts.targets].sort(),
    bias: 'none',
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    modules_to_save: null,
    layers_to_transform: null,
    layers_pattern: null,
    rank_pattern: {},
    alpha_pattern: {},
    use_rslora: false,
  };
}

/** PEFT adapts every layer's target modules: the adapter must hold exactly those, with the run's r and α. */
function checkAdapterMatchesConfig(
  model: LoraShapeConfig,
  lora: HostLora,
  rank: number,
  alpha: number,
  targets: readonly LoraTarget[],
): string[] {
  const expected: string[] = [];
  for (let l = 0; l < model.numHiddenLayers; l++)
    for (const t of targets) expected.push(moduleName(l, TARGET_PROJECTION[t]));
  const have = new Set(Object.keys(lora));
  const missing = expected.filter((m) => !have.has(m));
  const extra = [...have].filter((m) => !expected.includes(m));
  if (missing.length || extra.length)
    throw new Error(
      `PEFT export: the adapter's modules differ from the run's targets (${targets.join(', ')} on every layer)` +
        (missing.length ? `; missing ${missing.slice(0, 3).join(', ')}` : '') +
        (extra.length ? `; unexpected ${extra.slice(0, 3).join(', ')}` : ''),
    );
  for (const m of expected) {
    const p = lora[m];
    if (p.rank !== rank)
      throw new Error(`PEFT export: ${m} has rank ${p.rank}, the run's loraRank is ${rank}`);
    const scale = alpha / rank;
    if (Math.abs(p.scale - scale) > SCALE_REL_TOLERANCE * Math.abs(scale))
      throw new Error(`PEFT export: ${m} has scale ${p.scale}, the run's loraAlpha / loraRank is ${scale}`);
  }
  return expected;
}

function f32Bytes(a: FloatArray): Uint8Array {
  return encodeFloats(a instanceof Float32Array ? a : Float32Array.from(a), 'F32');
}

export async function exportPeftAdapter(
  lora: HostLora,
  opts: PeftExportOptions,
  out: FolderSink,
): Promise<PeftExportResult> {
  const c = opts.provenance.runConfig;
  if (c.fineTune !== 'lora')
    throw new Error(
      'PEFT export: this run fine-tunes all weights (fineTune = full); export the merged model instead',
    );
  checkLoraShapes(opts.model, lora);
  const modules = checkAdapterMatchesConfig(opts.model, lora, c.loraRank, c.loraAlpha, c.loraTargets);

  const specs: TensorSpec[] = [];
  const data = new Map<string, FloatArray>();
  for (const m of modules) {
    const p = lora[m];
    const inDim = p.A.length / p.rank;
    const outDim = p.B.length / p.rank;
    specs.push({ name: peftTensorName(m, 'A'), dtype: 'F32', shape: [p.rank, inDim] });
    specs.push({ name: peftTensorName(m, 'B'), dtype: 'F32', shape: [outDim, p.rank] });
    data.set(peftTensorName(m, 'A'), p.A);
    data.set(peftTensorName(m, 'B'), p.B);
  }
  const plan = await writeSafetensors(await out.createFile(ADAPTER_WEIGHTS_FILE), specs, (spec) => [
    f32Bytes(data.get(spec.name)!),
  ]);

  const base = opts.provenance.base;
  const adapterConfig = adapterConfigJson({
    rank: c.loraRank,
    alpha: c.loraAlpha,
    targets: c.loraTargets,
    baseModelNameOrPath: opts.baseModelNameOrPath ?? base.repo,
    revision: base.revision === 'local' ? null : base.revision,
  });
  await out.writeFile(ADAPTER_CONFIG_FILE, JSON.stringify(adapterConfig, null, 2) + '\n');
  const files = [ADAPTER_WEIGHTS_FILE, ADAPTER_CONFIG_FILE];
  const manifest = buildManifest('peft-adapter', opts.provenance, {
    lora: { rank: c.loraRank, alpha: c.loraAlpha, targets: [...c.loraTargets] },
    dtype: 'F32',
    files,
  });
  await out.writeFile(MANIFEST_FILE, manifestJson(manifest));
  return { files: [...files, MANIFEST_FILE], tensorCount: specs.length, adapterBytes: plan.fileSize };
}
