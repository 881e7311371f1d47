// What the verifier worker computes: parse + validate + evaluate AZ-Arith programs. Pure and shared by
// the worker host (workers/verifier.worker.ts), the in-process verifier and the CLI.
import {
  binaryOpCount,
  closedForm,
  evaluateProgram,
  parseProgram,
  printBody,
  printProgram,
  usedVariables,
  type ArithErrorKind,
  type ArithLimits,
} from '../arith/index.ts';

/** Parse `program`, then evaluate it on each input tuple (decimal strings, so BigInts cross threads). */
export interface VerifierJob {
  program: string;
  inputs: string[][];
}

/** Limits as plain numbers (structured-clone friendly). */
export interface WireLimits {
  maxSourceChars: number;
  maxBinaryOps: number;
  maxParenDepth: number;
  maxMagnitude: number;
  maxArity: number;
}

export type VerifierErrorKind = ArithErrorKind | 'nondeterministic' | 'timeout' | 'crashed';

export type InputResult =
  { ok: true; value: string; closed: string } | { ok: false; error: VerifierErrorKind };

export type VerifierVerdict =
  | {
      ok: true;
      canonical: string;
      /** The expression after `f(...) = `. */
      body: string;
      arity: number;
      usesVariable: boolean;
      binaryOps: number;
      results: InputResult[];
    }
  | { ok: false; error: VerifierErrorKind; message: string };

export interface VerifierRequest {
  id: number;
  jobs: VerifierJob[];
  limits: WireLimits;
}

export interface VerifierResponse {
  id: number;
  verdicts: VerifierVerdict[];
}

/** Posted once by a worker when its module has loaded; the supervisor starts its guards after it. */
export const VERIFIER_READY = { ready: true } as const;
export type VerifierMessage = VerifierResponse | typeof VERIFIER_READY;

export function isReadyMessage(msg: VerifierMessage): msg is typeof VERIFIER_READY {
  return (msg as { ready?: unknown }).ready === true;
}

const INTEGER = /^[-+]?\d+$/;

export function toArithLimits(w: WireLimits): ArithLimits {
  return { ...w, maxMagnitude: BigInt(w.maxMagnitude) };
}

export function runJob(job: VerifierJob, limits: ArithLimits): VerifierVerdict {
  const parsed = parseProgram(job.program, limits);
  if (!parsed.ok) return { ok: false, error: parsed.kind, message: parsed.message };
  const program = parsed.value;
  const results: InputResult[] = job.inputs.map((raw): InputResult => {
    if (!raw.every((s) => INTEGER.test(s))) return { ok: false, error: 'syntax' };
    const inputs = raw.map((s) => BigInt(s));
    // Determinism check (spec 4.3 item 6): evaluate twice and compare.
    const first = evaluateProgram(program, inputs, limits);
    const second = evaluateProgram(program, inputs, limits);
    if (!first.ok) return { ok: false, error: first.kind };
    if (!second.ok || second.value !== first.value) return { ok: false, error: 'nondeterministic' };
    return { ok: true, value: first.value.toString(), closed: closedForm(program, inputs) };
  });
  return {
    ok: true,
    canonical: printProgram(program),
    body: printBody(program),
    arity: program.params.length,
    usesVariable: usedVariables(program.body).size > 0,
    binaryOps: binaryOpCount(program.body),
    results,
  };
}

export function handleVerifierRequest(req: VerifierRequest): VerifierResponse {
  const limits = toArithLimits(req.limits);
  return { id: req.id, verdicts: req.jobs.map((job) => runJob(job, limits)) };
}
