// The run form is rendered from CONFIG_SCHEMA: knobs grouped, each with its allowed range in words and
// an input parser; nothing here knows a particular knob.
import { CONFIG_SCHEMA, type Knob, type KnobGroup, type RunConfig } from '../../config.ts';

export const GROUP_TITLES: Record<KnobGroup, string> = {
  run: 'Run',
  selfplay: 'Self-play',
  arith: 'AZ-Arith limits',
  train: 'Training',
  grpo: 'GRPO baseline',
  imitation: 'Imitation pretraining',
  eval: 'Evaluation',
  checkpoint: 'Checkpoints',
};

export type KnobKey = keyof RunConfig;

export interface KnobEntry {
  key: KnobKey;
  knob: Knob;
}

export function knobsByGroup(): { group: KnobGroup; title: string; knobs: KnobEntry[] }[] {
  const groups = new Map<KnobGroup, KnobEntry[]>();
  for (const [key, knob] of Object.entries(CONFIG_SCHEMA) as [KnobKey, Knob][]) {
    if (!groups.has(knob.group)) groups.set(knob.group, []);
    groups.get(knob.group)!.push({ key, knob });
  }
  return [...groups].map(([group, knobs]) => ({ group, title: GROUP_TITLES[group], knobs }));
}

/** `integer 1 – 512`, `0.01 – 1`, `one of …`: the allowed values, for the label. */
export function rangeText(knob: Knob): string {
  switch (knob.kind) {
    case 'int':
      return `integer ${knob.min.toLocaleString('en')} – ${knob.max.toLocaleString('en')}`;
    case 'float':
      return `${knob.min} – ${knob.max}`;
    case 'bool':
      return 'on / off';
    case 'enum':
      return knob.values.join(' | ');
    case 'list':
      return knob.minItems > 0 ? `at least ${knob.minItems}` : 'any subset';
    case 'evalFiles':
      return 'JSONL files';
  }
}

/** A number input's step: 1 for ints, a step small enough for the float's range. */
export function inputStep(knob: Knob): string {
  if (knob.kind === 'int') return '1';
  return 'any';
}

/** Parses what a person typed for a numeric knob; the message says what is allowed. */
export function parseNumber(
  knob: Knob,
  raw: string,
): { ok: true; value: number } | { ok: false; error: string } {
  if (knob.kind !== 'int' && knob.kind !== 'float') return { ok: false, error: 'not a numeric knob' };
  const s = raw.trim();
  const value = Number(s);
  if (s === '' || !Number.isFinite(value)) return { ok: false, error: `enter a number (${rangeText(knob)})` };
  if (knob.kind === 'int' && !Number.isInteger(value))
    return { ok: false, error: `enter a whole number (${rangeText(knob)})` };
  if (value < knob.min || value > knob.max) return { ok: false, error: `allowed: ${rangeText(knob)}` };
  return { ok: true, value };
}

/** Enum values come back from <select> as strings; numeric enums (e.g. baselines 6/2/1) need numbers. */
export function parseEnum(knob: Knob, raw: string): string | number {
  if (knob.kind !== 'enum') return raw;
  return typeof knob.default === 'number' ? Number(raw) : raw;
}
