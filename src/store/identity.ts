// A run continues only on the weights it started from: resuming on another model (or another revision
// of it) would silently mix two runs. Browser-safe.
import { StoreError } from './errors.ts';
import type { ModelIdentity, RunMeta } from './types.ts';

export class ModelMismatchError extends StoreError {
  override name = 'ModelMismatchError';
}

export function describeModel(m: ModelIdentity): string {
  return `${m.repo}@${m.revision} (sha256 ${m.sha256.slice(0, 12)}…)`;
}

/**
 * Throws unless `model` has the weights the run was created with (the SHA-256 decides). `action`: what
 * to do instead, for what the caller was about to do with the run (default: resume it).
 */
export function checkSameModel(
  meta: RunMeta,
  model: ModelIdentity,
  action = 'Load the original model to resume it, or start a new run.',
): void {
  if (meta.model.sha256.toLowerCase() === model.sha256.toLowerCase()) return;
  throw new ModelMismatchError(
    `Run "${meta.id}" was trained on ${describeModel(meta.model)}, but the loaded model is ${describeModel(model)}. ${action}`,
  );
}
