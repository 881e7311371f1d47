// Sweep planning (issue 10): `--vary key=v1,v2,...` (repeatable; several keys give their cartesian
// product) becomes one run per variant with a stable folder name, a config validated before anything
// trains, and a resumable status: a finished run is skipped, an unfinished one resumed, a missing one
// created. The training itself is injected (the CLI passes `runTrainCommand`), so planning and the
// resume rules are testable without a model. Browser-safe: no Node imports.
import { CONFIG_SCHEMA, parseSetFlag, resolveConfig, type Knob, type RunConfig } from '../config.ts';
import type { RunMeta } from '../store/types.ts';

export interface VaryAxis {
  key: keyof RunConfig;
  /** The values as typed (list knobs join their items with `+`). */
  raw: string[];
}

export interface SweepSpec {
  preset: string;
  vary: VaryAxis[];
  /** `key=value` overrides shared by every variant (like `tabzero train --set`). */
  set: string[];
  /** Training steps per run; absent: the preset's `totalSteps` (after `set`). */
  steps?: number;
  /** The folder that holds one run folder per variant. */
  out: string;
}

export interface SweepVariant {
  /** Folder name, e.g. `baselines-6` or `baselines-2_lr-0.0001`. */
  name: string;
  dir: string;
  /** The `--set` flags of this variant (shared ones first). */
  set: string[];
  /** The varied knobs and their values. */
  values: Partial<RunConfig>;
  config: RunConfig;
}

export type VariantStatus = 'new' | 'resume' | 'done';

export class SweepError extends Error {
  override name = 'SweepError';
}

const knobOf = (key: string): Knob | undefined => (CONFIG_SCHEMA as unknown as Record<string, Knob>)[key];

/** `key=v1,v2,...`; a list knob's items are joined with `+` inside one value. */
export function parseVary(flag: string): VaryAxis {
  const eq = flag.indexOf('=');
  if (eq <= 0) throw new SweepError(`--vary expects key=v1,v2,..., got '${flag}'`);
  const key = flag.slice(0, eq).trim();
  if (!knobOf(key)) throw new SweepError(`--vary: unknown config key '${key}'`);
  const raw = flag
    .slice(eq + 1)
    .split(',')
    .map((v) => v.trim());
  if (raw.length === 0 || raw.some((v) => v === ''))
    throw new SweepError(`--vary ${key}: empty value in '${flag}'`);
  if (new Set(raw).size !== raw.length) throw new SweepError(`--vary ${key}: a value appears twice`);
  return { key: key as keyof RunConfig, raw };
}

/** The `--set` flag of one varied value (list items go back to commas). */
export function setFlagFor(key: keyof RunConfig, raw: string): string {
  return `${key}=${knobOf(key)!.kind === 'list' ? raw.split('+').join(',') : raw}`;
}

/** A folder-safe name part: letters, digits, `.` and `-` only. */
export function namePart(key: string, raw: string): string {
  return `${key}-${raw.replace(/[^A-Za-z0-9.-]+/g, '-')}`;
}

function cartesian<T>(axes: T[][]): T[][] {
  return axes.reduce<T[][]>((acc, axis) => acc.flatMap((combo) => axis.map((v) => [...combo, v])), [[]]);
}

/** Every variant of a sweep, in the order of the values given; throws on any invalid value. */
export function planSweep(spec: SweepSpec): SweepVariant[] {
  if (spec.vary.length === 0) throw new SweepError('a sweep needs at least one --vary key=v1,v2,...');
  const keys = spec.vary.map((v) => v.key);
  if (new Set(keys).size !== keys.length) throw new SweepError('--vary names a key twice');
  const shared: Partial<RunConfig> = Object.assign({}, ...spec.set.map(parseSetFlag));
  for (const key of keys) {
    if (key in shared) throw new SweepError(`'${key}' is both varied and set with --set`);
  }
  if (keys.includes('totalSteps')) throw new SweepError('vary --steps by running separate sweeps');
  const combos = cartesian(spec.vary.map((axis) => axis.raw.map((raw) => ({ key: axis.key, raw }))));
  const variants = combos.map((combo) => {
    const flags = combo.map((c) => setFlagFor(c.key, c.raw));
    const values: Partial<RunConfig> = Object.assign({}, ...flags.map(parseSetFlag));
    const steps = spec.steps === undefined ? {} : { totalSteps: spec.steps };
    const config = resolveConfig(spec.preset, { ...shared, ...values, ...steps });
    const name = combo.map((c) => namePart(c.key, c.raw)).join('_');
    return {
      name,
      dir: `${spec.out.replace(/[/\\]+$/, '')}/${name}`,
      set: [...spec.set, ...flags],
      values,
      config,
    };
  });
  const names = variants.map((v) => v.name);
  if (new Set(names).size !== names.length) throw new SweepError('two variants map to the same folder name');
  return variants;
}

/**
 * What to do with a variant's folder: nothing there → new; a finished run of the same config → done;
 * any other run of the same config → resume. A run of another config is refused (never overwritten).
 */
export function variantStatus(v: SweepVariant, meta: RunMeta | null): VariantStatus {
  if (!meta) return 'new';
  const differs = (Object.keys(v.config) as (keyof RunConfig)[]).filter(
    (k) => JSON.stringify(meta.config[k]) !== JSON.stringify(v.config[k]),
  );
  if (differs.length) {
    const k = differs[0];
    throw new SweepError(
      `${v.dir} holds a run with another config (${k}: ${JSON.stringify(meta.config[k])}, ` +
        `this sweep: ${JSON.stringify(v.config[k])}${differs.length > 1 ? `, and ${differs.length - 1} more` : ''}); ` +
        'remove it or choose another --out',
    );
  }
  return meta.status === 'finished' && meta.step >= meta.config.totalSteps ? 'done' : 'resume';
}

export interface SweepTrainOptions {
  model: string;
  preset: string;
  set: string[];
  steps: number;
  out: string;
  resume: boolean;
}

export interface SweepDeps {
  /** Trains (or resumes) one run to its end: `runTrainCommand` in the CLI. */
  train: (opts: SweepTrainOptions) => Promise<void>;
  /** The run folder's metadata, or null when it holds no run. */
  readMeta: (dir: string) => Promise<RunMeta | null>;
  log: (line: string) => void;
}

/** Runs the variants one after another; returns the folders of all variants, in plan order. */
export async function runSweep(spec: SweepSpec, model: string, deps: SweepDeps): Promise<SweepVariant[]> {
  const variants = planSweep(spec);
  // Check every folder before training anything, so a conflict never surfaces halfway through.
  const statuses: VariantStatus[] = [];
  for (const v of variants) statuses.push(variantStatus(v, await deps.readMeta(v.dir)));
  for (const [k, v] of variants.entries()) {
    const what =
      statuses[k] === 'done' ? 'finished, skipped' : statuses[k] === 'resume' ? 'resuming' : 'starting';
    deps.log(`sweep ${k + 1}/${variants.length} ${v.name}: ${what}`);
    if (statuses[k] === 'done') continue;
    await deps.train({
      model,
      preset: spec.preset,
      set: v.set,
      steps: v.config.totalSteps,
      out: v.dir,
      resume: statuses[k] === 'resume',
    });
  }
  return variants;
}
