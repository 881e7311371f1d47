// Batch helpers: validate many proposals and check many solver responses with one verifier call each.
import type { RunConfig } from '../config.ts';
import {
  draftInductionProposal,
  draftTripletProposal,
  judgeProposal,
  type JudgedProposal,
} from './proposals.ts';
import { draftRawProposal, judgeRawProposal } from './raw-proposer.ts';
import { checkSolverResponse } from './solver.ts';
import type { TaskEntry, TaskType } from './types.ts';
import type { Verifier } from './verifier.ts';

export interface ProposalInput {
  type: TaskType;
  response: string;
  /** The program an induction proposal chooses inputs for. */
  source?: TaskEntry;
}

export async function validateProposals(
  items: readonly ProposalInput[],
  verifier: Verifier,
  config: RunConfig,
  /** With config.excludeEvalItems: the eval expressions no triplet task's closed form may be. */
  evalExpressions?: ReadonlySet<string>,
): Promise<JudgedProposal[]> {
  const drafts = items.map((it) =>
    it.type === 'ind'
      ? draftInductionProposal(it.response, it.source!, config)
      : draftTripletProposal(it.type, it.response),
  );
  const jobs = drafts.flatMap((d) => (d.ok ? [d.job] : []));
  const verdicts = await verifier.verify(jobs);
  let k = 0;
  return drafts.map((d): JudgedProposal => {
    if (!d.ok) return { valid: false, reason: d.reason };
    const j = judgeProposal(d, verdicts[k++], config);
    const excluded = config.excludeEvalItems && evalExpressions;
    // Triplets (ded or abd) are checked: seeding shares one triplet set between D_ded and D_abd.
    if (j.valid && excluded && j.task.type !== 'ind' && j.task.closed.some((e) => excluded.has(e)))
      return { valid: false, reason: 'eval_item' };
    return j;
  });
}

/** Raw-mode proposals (closed expressions, issue 10), one verifier call. */
export async function validateRawProposals(
  responses: readonly string[],
  verifier: Verifier,
  config: RunConfig,
): Promise<JudgedProposal[]> {
  const drafts = responses.map(draftRawProposal);
  const verdicts = await verifier.verify(drafts.flatMap((d) => (d.ok ? [d.job] : [])));
  let k = 0;
  return drafts.map((d) =>
    d.ok ? judgeRawProposal(verdicts[k++], config) : { valid: false, reason: d.reason },
  );
}

export interface SolverVerdict {
  fmt: boolean;
  correct: boolean;
}

export async function checkSolverResponses(
  items: readonly { task: TaskEntry; response: string }[],
  verifier: Verifier,
  config: RunConfig,
): Promise<SolverVerdict[]> {
  const checks = items.map((it) => checkSolverResponse(it.task, it.response, config));
  const verdicts = await verifier.verify(checks.flatMap((c) => c.jobs));
  let k = 0;
  return checks.map((c) => {
    const mine = verdicts.slice(k, k + c.jobs.length);
    k += c.jobs.length;
    return { fmt: c.fmt, correct: c.decide(mine) };
  });
}
