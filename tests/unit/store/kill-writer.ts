// A trainer stand-in for the SIGKILL test: opens (or creates) a run folder, resumes it, then commits
// steps with a checkpoint after every one, printing each committed step, until it is killed.
import { NodeRunStore } from '../../../src/store/node-run-store.ts';
import { generations, newRun, seededState, stepCommit } from './fixtures.ts';

const [dir] = process.argv.slice(2);
const store = new NodeRunStore(dir);
const w = await store.openRun('.').catch(() => store.createRun('.', newRun()));
const p = await w.resume();
let state = p.state;
if (!state) {
  state = seededState();
  await w.commitSeeding({ state, samples: generations(0, 2) });
  await w.saveCheckpoint({ step: 0, tensors: big(0), reason: 'seeded' });
}
console.log(`resumed ${p.step}`);
for (;;) {
  const c = stepCommit(state);
  c.samples = generations(c.step, 200);
  await w.commitStep(c);
  state = c.state;
  console.log(`committed ${state.step}`);
  await w.saveCheckpoint({ step: state.step, tensors: big(state.step), reason: 'steps' });
}

/** Checkpoint tensors large enough (4 MB) that a kill often lands inside a write. */
function big(step: number) {
  return [{ name: 'lora.A', shape: [1 << 20], data: new Float32Array(1 << 20).fill(step) }];
}
