// `tabzero eval-set`: writes a held-out eval set (spec 5.2, 5.3) as JSONL and prints its SHA-256.
import { Command, InvalidArgumentError } from 'commander';
import { writeFile } from 'node:fs/promises';
import { EVAL_SET_NAMES, type EvalSetName } from '../../src/config.ts';
import { generateEvalSetJsonl, sha256Hex } from '../../src/selfplay/evalsets.ts';

function parseName(value: string): EvalSetName {
  if (!(EVAL_SET_NAMES as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`expected one of ${EVAL_SET_NAMES.join(', ')}`);
  }
  return value as EvalSetName;
}

export function register(program: Command): void {
  program
    .command('eval-set')
    .description('Write a deterministic eval set as JSONL (arith_eval_200 or arith_expr_eval_100)')
    .requiredOption('--name <name>', `one of ${EVAL_SET_NAMES.join(', ')}`, parseName)
    .requiredOption('--out <file>', 'output .jsonl file')
    .action(async (opts: { name: EvalSetName; out: string }) => {
      const text = generateEvalSetJsonl(opts.name);
      await writeFile(opts.out, text);
      const rows = text.split('\n').length - 1;
      process.stdout.write(`${opts.name}: ${rows} rows, sha256 ${await sha256Hex(text)} → ${opts.out}\n`);
    });
}
