// `tabzero arith`: canonical form and value of an AZ-Arith program (spec 4.1), one program from the
// command line or many as JSON lines on stdin. Evaluation is our parser + BigInt evaluator, never eval.
import { Command, InvalidArgumentError } from 'commander';
import { createInterface } from 'node:readline';
import { DEFAULT_ARITH_LIMITS } from '../../src/arith/index.ts';
import { runJob } from '../../src/selfplay/verifier-protocol.ts';

type Answer = { canonical: string; value: string } | { canonical?: string; error: string; message?: string };

const INTEGER = /^[-+]?\d+$/;

function answer(program: string, input: string[]): Answer {
  const v = runJob({ program, inputs: [input] }, DEFAULT_ARITH_LIMITS);
  if (!v.ok) return { error: v.error, message: v.message };
  const r = v.results[0];
  return r.ok ? { canonical: v.canonical, value: r.value } : { canonical: v.canonical, error: r.error };
}

function parseInputFlag(value: string): string[] {
  const parts = value === '' ? [] : value.split(',').map((s) => s.trim());
  if (!parts.every((p) => INTEGER.test(p)))
    throw new InvalidArgumentError(`'${value}' is not a comma-separated list of integers`);
  return parts;
}

/** One JSONL request → one JSONL answer; malformed requests get an error line, never a crash. */
export function answerJsonLine(line: string): string {
  let req: unknown;
  try {
    req = JSON.parse(line);
  } catch {
    return JSON.stringify({ error: 'bad_request', message: 'not valid JSON' });
  }
  const r = req as { program?: unknown; input?: unknown };
  if (typeof r !== 'object' || r === null || typeof r.program !== 'string') {
    return JSON.stringify({
      error: 'bad_request',
      message: 'expected {"program": string, "input"?: integer[]}',
    });
  }
  const input = r.input ?? [];
  const ok =
    Array.isArray(input) &&
    input.every(
      (v) => (typeof v === 'number' && Number.isSafeInteger(v)) || (typeof v === 'string' && INTEGER.test(v)),
    );
  if (!ok) return JSON.stringify({ error: 'bad_request', message: 'input must be an array of integers' });
  const a = answer(r.program, (input as (number | string)[]).map(String));
  return JSON.stringify('value' in a ? { canonical: a.canonical, value: a.value } : { error: a.error });
}

export function register(program: Command): void {
  program
    .command('arith')
    .description('Print the canonical form and value of an AZ-Arith program, or its typed error')
    .argument('[program]', 'program, e.g. "(x, y) => x * (y + 2)" or "f(x) = x // 2" or "7 % -3"')
    .option('--input <ints>', 'comma-separated integer inputs, e.g. --input=3,-4', parseInputFlag)
    .option(
      '--jsonl',
      'read {"program": "...", "input": [3, 4]} lines from stdin; write one answer line each',
    )
    .action(async (src: string | undefined, opts: { input?: string[]; jsonl?: boolean }) => {
      if (opts.jsonl) {
        if (src !== undefined)
          throw new InvalidArgumentError('--jsonl reads programs from stdin; drop the PROGRAM argument');
        const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
        for await (const line of rl) {
          if (line.trim() === '') continue;
          process.stdout.write(answerJsonLine(line) + '\n');
        }
        return;
      }
      if (src === undefined) throw new InvalidArgumentError('give a PROGRAM or --jsonl');
      const a = answer(src, opts.input ?? []);
      if ('value' in a) {
        process.stdout.write(`canonical: ${a.canonical}\nvalue: ${a.value}\n`);
        return;
      }
      if (a.canonical) process.stdout.write(`canonical: ${a.canonical}\n`);
      process.stdout.write(`error: ${a.error}${a.message ? ` (${a.message})` : ''}\n`);
    });
}
