// Proposer side: parse a proposer response (spec 4.5) into a verifier job, then judge validity from the
// verifier's verdict (spec 4.3, with the DEVIATION switches of the config).
import type { RunConfig } from '../config.ts';
import { extractBody } from './format.ts';
import { FORMAT_EXAMPLE } from './prompts.ts';
import { WORKSHOP_FORMAT_EXAMPLE } from './workshop-prompts.ts';
import type { InvalidReason, TaskEntry, TaskType } from './types.ts';
import type { VerifierJob, VerifierVerdict } from './verifier-protocol.ts';

const PROGRAM_LINE = /^\s*(f\s*\([^)]*\)\s*=.+|\([^)]*\)\s*=>.+|[a-z]\s*=>.+)$/;
const INPUT_LINE = /^\s*input\s*[:=]\s*(.+)$/i;
const MESSAGE_LINE = /^\s*(message|hint)\s*[:=]\s*(.+)$/i;
const INTEGER_PART = /^\s*[-+]?\d+\s*$/;

/** A proposal ready for the verifier, or the reason it never gets there. */
export type ProposalDraft =
  | { ok: true; type: TaskType; job: VerifierJob; inputs: bigint[][]; message?: string; source?: TaskEntry }
  | { ok: false; type: TaskType; reason: InvalidReason };

export type JudgedProposal =
  | { valid: true; task: Omit<TaskEntry, 'id' | 'step' | 'seed' | 'origin'> }
  | { valid: false; reason: InvalidReason };

function parseInputTuple(text: string): bigint[] | null {
  const parts = text.split(',');
  if (!parts.every((p) => INTEGER_PART.test(p))) return null;
  return parts.map((p) => BigInt(p.trim()));
}

/** Deduction/abduction proposer: first program line + first input line of the answer body. */
export function draftTripletProposal(type: 'ded' | 'abd', response: string): ProposalDraft {
  const body = extractBody(response);
  if (!body) return { ok: false, type, reason: 'no_answer' };
  const lines = body.split('\n');
  const programLine = lines.find((l) => PROGRAM_LINE.test(l));
  if (!programLine) return { ok: false, type, reason: 'no_program' };
  const inputMatch = lines.map((l) => INPUT_LINE.exec(l)).find((m) => m);
  if (!inputMatch) return { ok: false, type, reason: 'no_input' };
  const input = parseInputTuple(inputMatch[1]);
  if (!input) return { ok: false, type, reason: 'bad_input' };
  return {
    ok: true,
    type,
    job: { program: programLine.trim(), inputs: [input.map(String)] },
    inputs: [input],
  };
}

/** Induction proposer: the last N input lines and the first message line, for a buffered program. */
export function draftInductionProposal(
  response: string,
  source: TaskEntry,
  config: Pick<RunConfig, 'inductionInputs' | 'maxMessageChars'>,
): ProposalDraft {
  const type = 'ind';
  const body = extractBody(response);
  if (!body) return { ok: false, type, reason: 'no_answer' };
  const lines = body.split('\n');
  const inputLines = lines.map((l) => INPUT_LINE.exec(l)).filter((m): m is RegExpExecArray => m !== null);
  if (inputLines.length < config.inductionInputs) return { ok: false, type, reason: 'too_few_inputs' };
  const messageMatch = lines.map((l) => MESSAGE_LINE.exec(l)).find((m) => m);
  const message = messageMatch?.[2].trim().slice(0, config.maxMessageChars);
  if (!message) return { ok: false, type, reason: 'no_message' };
  const inputs: bigint[][] = [];
  for (const m of inputLines.slice(-config.inductionInputs)) {
    const tuple = parseInputTuple(m[1]);
    if (!tuple) return { ok: false, type, reason: 'bad_input' };
    inputs.push(tuple);
  }
  return {
    ok: true,
    type,
    job: { program: source.program, inputs: inputs.map((t) => t.map(String)) },
    inputs,
    message,
    source,
  };
}

const absBig = (v: bigint) => (v < 0n ? -v : v);
const stripSpace = (s: string) => s.replace(/\s+/g, '');

/** Validity (spec 4.3 items 2–7) from the draft and the verifier's verdict on it. */
export function judgeProposal(
  draft: ProposalDraft & { ok: true },
  verdict: VerifierVerdict,
  config: RunConfig,
): JudgedProposal {
  if (!verdict.ok) return { valid: false, reason: verdict.error };
  if (verdict.arity < 1) return { valid: false, reason: 'constant_program' };
  // The format example the proposer saw (spec 4.3 (d)): its family's.
  const example = config.promptFamily === 'workshop' ? WORKSHOP_FORMAT_EXAMPLE : FORMAT_EXAMPLE;
  const bound = BigInt(config.inputBound);
  for (const tuple of draft.inputs) {
    if (tuple.length !== verdict.arity) return { valid: false, reason: 'arity' };
    if (tuple.some((v) => absBig(v) > bound)) return { valid: false, reason: 'input_range' };
  }
  const outputs: number[] = [];
  const closed: string[] = [];
  for (const r of verdict.results) {
    if (!r.ok) return { valid: false, reason: r.error };
    if (absBig(BigInt(r.value)) > BigInt(config.outputBound)) return { valid: false, reason: 'output_range' };
    outputs.push(Number(r.value));
    closed.push(r.closed);
  }
  if (config.nonconstantProgram && !verdict.usesVariable) return { valid: false, reason: 'constant_program' };
  const inputs = draft.inputs.map((t) => t.map(Number));
  if (draft.type === 'ind') {
    if (config.distinctInductionInputs && new Set(inputs.map((t) => t.join(','))).size !== inputs.length) {
      return { valid: false, reason: 'duplicate_inputs' };
    }
    // The expression part is compared; a lone variable or number would match ordinary prose, so it is skipped.
    if (config.hintLeakCheck && verdict.binaryOps > 0) {
      if (stripSpace(draft.message ?? '').includes(stripSpace(verdict.body)))
        return { valid: false, reason: 'hint_leak' };
    }
  } else if (
    config.exampleCopyCheck &&
    verdict.canonical === example.program &&
    inputs[0].join(',') === example.input.join(',')
  ) {
    return { valid: false, reason: 'example_copy' };
  }
  return {
    valid: true,
    task: {
      type: draft.type,
      program: verdict.canonical,
      arity: verdict.arity,
      inputs,
      outputs,
      closed,
      binaryOps: verdict.binaryOps,
      ...(draft.type === 'ind' ? { message: draft.message } : {}),
    },
  };
}
