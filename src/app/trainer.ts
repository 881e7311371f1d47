// The UI's handle on the trainer worker (the one owner of the GPU device).
import * as Comlink from 'comlink';
import type { TrainerApi } from '../protocol.ts';

let trainer: Comlink.Remote<TrainerApi> | null = null;

export function getTrainer(): Comlink.Remote<TrainerApi> {
  if (!trainer) {
    const worker = new Worker(new URL('../../workers/trainer.worker.ts', import.meta.url), {
      type: 'module',
      name: 'trainer',
    });
    trainer = Comlink.wrap<TrainerApi>(worker);
  }
  return trainer;
}
