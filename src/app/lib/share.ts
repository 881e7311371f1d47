// A shareable link carries the run config in the URL hash: `#preset=workshop&batchPerGroup=2&…`, only
// the knobs that differ from the preset, each parsed and range-checked by config.ts like a CLI `--set`.
import { CONFIG_SCHEMA, PRESETS, parseSetFlag, resolveConfig, type RunConfig } from '../../config.ts';

export interface SharedConfig {
  preset: string;
  overrides: Partial<RunConfig>;
  /** Entries that were ignored, with the reason (a typo in a hand-edited link must not block the page). */
  problems: string[];
}

function encodeValue(value: unknown): string {
  return Array.isArray(value) ? value.join(',') : String(value);
}

function sameValue(a: unknown, b: unknown): boolean {
  return Array.isArray(a) && Array.isArray(b)
    ? a.length === b.length && a.every((v, i) => v === b[i])
    : a === b;
}

/** Only the knobs where `config` differs from the preset it started from. */
export function diffFromPreset(preset: string, config: RunConfig): Partial<RunConfig> {
  const base = resolveConfig(preset) as unknown as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(CONFIG_SCHEMA)) {
    const value = (config as unknown as Record<string, unknown>)[key];
    if (!sameValue(value, base[key])) out[key] = value;
  }
  return out as Partial<RunConfig>;
}

export function encodeShare(preset: string, config: RunConfig): string {
  const params = new URLSearchParams({ preset });
  for (const [key, value] of Object.entries(diffFromPreset(preset, config))) {
    // Your own eval files stay in this browser: a link carries knobs, not file contents.
    if (key === 'evalFiles') continue;
    params.set(key, encodeValue(value));
  }
  return `#${params.toString()}`;
}

/** Null when the hash carries no config (no `preset=`). */
export function decodeShare(hash: string): SharedConfig | null {
  const params = new URLSearchParams(hash.replace(/^#/, ''));
  const preset = params.get('preset');
  if (preset === null) return null;
  const problems: string[] = [];
  const overrides: Record<string, unknown> = {};
  const known = preset in PRESETS;
  if (!known) problems.push(`unknown preset '${preset}', using 'browser'`);
  for (const [key, raw] of params) {
    if (key === 'preset') continue;
    try {
      Object.assign(overrides, parseSetFlag(`${key}=${raw}`));
    } catch (err) {
      problems.push(err instanceof Error ? err.message : String(err));
    }
  }
  const chosen = known ? preset : 'browser';
  // Cross-field checks (e.g. even inductionInputs) need the whole config: drop the overrides if they fail.
  try {
    resolveConfig(chosen, overrides as Partial<RunConfig>);
  } catch (err) {
    problems.push(`${err instanceof Error ? err.message : String(err)}; the link's overrides were ignored`);
    return { preset: chosen, overrides: {}, problems };
  }
  return { preset: chosen, overrides: overrides as Partial<RunConfig>, problems };
}
