// tabzero.json: the provenance file every export carries next to its payload (DESIGN.md "Data and
// files"): format version, what kind of export it is, the base model's identity (repo, revision,
// SHA-256 of the weights), the run's seed and whole config, and the prompt templates the weights were
// trained with, so they can be used the way they were trained. Browser-safe.

import type { LoraTarget, RunConfig } from '../config.ts';
import type { ModelIdentity } from '../model/model-folder.ts';
import type { RunMeta } from '../store/types.ts';

export const MANIFEST_FILE = 'tabzero.json';
export const EXPORT_FORMAT = 'tabzero-export';
export const EXPORT_FORMAT_VERSION = 1;

export type ExportKind = 'hf-merged' | 'peft-adapter' | 'jsonl';

/** Where an export comes from: the caller fills it from the run (see provenanceFromRun). */
export interface ExportProvenance {
  /** The base model the run trained. */
  base: ModelIdentity;
  runConfig: RunConfig;
  /** The run's prompt templates (RunMeta.templates). */
  templates: Readonly<Record<string, string>>;
  /** The run and the step whose weights or data are exported; absent for an export outside a run. */
  run?: { id: string; step: number; zeroData: boolean };
  tabzeroVersion?: string;
  /** ISO time written into the manifest (default: now); fixed in tests. */
  createdAt?: string;
}

export interface ExportManifest {
  format: typeof EXPORT_FORMAT;
  formatVersion: number;
  kind: ExportKind;
  createdAt: string;
  tabzeroVersion: string | null;
  run: { id: string; step: number; zeroData: boolean } | null;
  seed: number;
  baseModel: ModelIdentity;
  config: RunConfig;
  templates: Record<string, string>;
  /** The adapter that was exported or merged; null when nothing was (full fine-tuning, JSONL). */
  lora: { rank: number; alpha: number; targets: LoraTarget[] } | null;
  /** Weights' dtype (safetensors spelling) for model exports; null otherwise. */
  dtype: string | null;
  /** The payload files next to tabzero.json. */
  files: string[];
}

export function provenanceFromRun(meta: RunMeta): ExportProvenance {
  return {
    base: { ...meta.model },
    runConfig: meta.config,
    templates: meta.templates,
    run: { id: meta.id, step: meta.step, zeroData: !meta.notZeroData },
    tabzeroVersion: meta.tabzeroVersion,
  };
}

export function buildManifest(
  kind: ExportKind,
  p: ExportProvenance,
  extra: { lora: ExportManifest['lora']; dtype: string | null; files: string[] },
): ExportManifest {
  return {
    format: EXPORT_FORMAT,
    formatVersion: EXPORT_FORMAT_VERSION,
    kind,
    createdAt: p.createdAt ?? new Date().toISOString(),
    tabzeroVersion: p.tabzeroVersion ?? null,
    run: p.run ? { ...p.run } : null,
    seed: p.runConfig.seed,
    baseModel: { repo: p.base.repo, revision: p.base.revision, sha256: p.base.sha256 },
    config: structuredClone(p.runConfig),
    templates: { ...p.templates },
    lora: extra.lora,
    dtype: extra.dtype,
    files: [...extra.files],
  };
}

/** The adapter description of a run config (null for full fine-tuning). */
export function loraOfConfig(c: RunConfig): ExportManifest['lora'] {
  if (c.fineTune !== 'lora') return null;
  return { rank: c.loraRank, alpha: c.loraAlpha, targets: [...c.loraTargets] };
}

export function manifestJson(m: ExportManifest): string {
  return JSON.stringify(m, null, 2) + '\n';
}

/** Parses tabzero.json; refuses other formats and newer versions with a message saying which. */
export function parseManifest(text: string, what = MANIFEST_FILE): ExportManifest {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new Error(`${what}: not valid JSON (${err instanceof Error ? err.message : String(err)})`, {
      cause: err,
    });
  }
  const m = v as Partial<ExportManifest> | null;
  if (typeof m !== 'object' || m === null || m.format !== EXPORT_FORMAT)
    throw new Error(`${what}: not a TabZero export manifest (format ${JSON.stringify(m?.format)})`);
  if (typeof m.formatVersion !== 'number' || !Number.isInteger(m.formatVersion) || m.formatVersion < 1)
    throw new Error(`${what}: format version ${JSON.stringify(m.formatVersion)} is not a positive integer`);
  if (m.formatVersion > EXPORT_FORMAT_VERSION)
    throw new Error(
      `${what}: written by a newer TabZero (export format version ${m.formatVersion}; this one reads up to ${EXPORT_FORMAT_VERSION})`,
    );
  return m as ExportManifest;
}
