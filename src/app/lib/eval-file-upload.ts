// Reading your own eval file on the page (the Eval tab and the evalFiles knob): its bytes' SHA-256 and its
// items, or every bad line, before anything reaches the trainer.
import type { EvalFileSet } from '../../config.ts';
import { sha256Hex } from '../../model/sha256.ts';
import { EvalFileError, parseEvalFile } from '../../selfplay/eval-file.ts';

export type EvalFileRead = { ok: true; set: EvalFileSet } | { ok: false; errors: readonly string[] };

export async function readEvalFile(file: File): Promise<EvalFileRead> {
  const bytes = new Uint8Array(await file.arrayBuffer());
  try {
    const items = parseEvalFile(new TextDecoder().decode(bytes), file.name);
    return { ok: true, set: { name: file.name, sha256: sha256Hex(bytes), items } };
  } catch (err) {
    return { ok: false, errors: err instanceof EvalFileError ? err.lines : [String(err)] };
  }
}
