// One AZR step in the normative order of spec 4.9: draw references and solver tasks from the buffers as
// they stand, (1) generate all proposals in one call, (2) validate them, (3)+(4) generate the nEst
// estimation rollouts of every valid, well-formatted proposal and the 3B solver responses in one call,
// (5) rewards and TRR++ advantages, (6) one policy.step on the 6B proposer/solver sequences (estimation
// rollouts are never trained on), (7) insert the valid proposals with step t.
//
// Experiment variants (issue 10, all off by default): oversampling (k×B proposals per type, the first B
// valid ones trained), a diversity bonus on proposer rewards, tiered baselines, binary and "solver
// improvement" learnability, and raw few-shot proposer prompts (closed-expression deduction tasks only).
// With 'improvement' the proposals of step t are trained at step t + 1, once the update of step t has
// happened and their tasks were estimated again (the pending proposals are part of the runner state).
//
// The phases are in azr-phases.ts, the step's records and metrics in azr-report.ts.
import {
  check,
  draw,
  insert,
  judge,
  propose,
  rollOut,
  score,
  solverTasks,
  stepSetup,
  update,
} from './azr-phases.ts';
import { stepReport } from './azr-report.ts';
import type { StepContext } from './context.ts';
import type { RunnerPhase, StepResult } from './types.ts';

export { selectKept } from './azr-phases.ts';

export async function runAzrStep(ctx: StepContext): Promise<StepResult> {
  const s = stepSetup(ctx);
  const timeMs: Partial<Record<RunnerPhase, number>> = {};
  let phaseStart = Date.now();
  const lap = (phase: RunnerPhase) => {
    const now = Date.now();
    timeMs[phase] = (timeMs[phase] ?? 0) + (now - phaseStart);
    phaseStart = now;
  };

  ctx.progress('proposing');
  const drawn = draw(s);
  const proposed = await propose(s, drawn.prompts); // (1)
  lap('proposing');

  ctx.progress('validating');
  const judged = await judge(s, proposed, drawn); // (2)
  const kept = judged.filter((p) => p.kept);
  const tasks = solverTasks(s, drawn, kept);
  lap('validating');

  ctx.progress('estimating'); // (3)+(4): this step's proposals, and last step's again under 'improvement'
  const estimated = kept.filter((p) => p.task && p.fmt);
  const pending = s.improvement ? ctx.pending : [];
  const reestimated = pending.filter((q) => q.task && q.fmt);
  const rolled = await rollOut(
    s,
    [...estimated, ...reestimated].flatMap((x) => (x.task ? [{ task: x.task }] : [])),
    tasks,
  );
  lap('estimating');

  ctx.progress('solving'); // the verifier's verdicts, (5) rewards and TRR++ advantages
  const checked = await check(s, rolled);
  const sOf = new Map([...estimated, ...reestimated].map((x, k) => [x, checked.learnability[k]] as const));
  const proposals = judged.map((p) => ({ ...p, s: sOf.get(p) ?? null }));
  const keptScored = proposals.filter((p) => p.kept);
  const pendingScored = pending.map((q) => ({ q, after: sOf.get(q) ?? null }));
  const scored = score(s, keptScored, pendingScored, checked.solvers);
  lap('solving');

  ctx.progress('updating'); // (6)
  const updated = await update(s, scored);
  lap('updating');

  const inserted = insert(s, keptScored); // (7)
  return stepReport(s, { proposals, rolled, checked, scored, update: updated, inserted, timeMs });
}
