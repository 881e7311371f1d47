// What the page's URL asks for, besides the shared config in the hash.
import type { RunPhase } from '../../protocol.ts';

/** `?compat=1` asks the worker for a WebGPU compatibility-mode device (GL / D3D11 backends). */
export function wantsCompat(search: string): boolean {
  return new URLSearchParams(search).get('compat') === '1';
}

const HOLD_POINTS: readonly RunPhase[] = [
  'proposing',
  'validating',
  'estimating',
  'solving',
  'updating',
  'checkpointing',
];

/** `?hold=PHASE` (tests only): runs hold at that phase, so a test can kill the browser there. */
export function holdPoint(search: string): RunPhase | null {
  const p = new URLSearchParams(search).get('hold');
  return HOLD_POINTS.find((h) => h === p) ?? null;
}
