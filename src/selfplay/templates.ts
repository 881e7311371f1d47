// seedFallback='templates' (spec 4.8, a DEVIATION that makes the run "not zero-data"): a small fixed
// family of template programs with seeded constants and inputs, used only to fill a seeding shortfall.
import { closedForm, evaluateProgram, parseProgram, printProgram, binaryOpCount } from '../arith/index.ts';
import type { Rng } from '../random.ts';
import type { TaskEntry } from './types.ts';

type TemplateTask = Omit<TaskEntry, 'id' | 'step' | 'seed' | 'origin'>;

const FAMILY: ((c: number, m: number) => string)[] = [
  (c) => `f(x) = x + ${c}`,
  (c) => `f(x) = x * ${c}`,
  (c, m) => `f(x) = (x + ${c}) % ${m}`,
  (c) => `f(x, y) = x * y + ${c}`,
];
const CONSTANT_RANGE = [1, 20] as const;
const MODULUS_RANGE = [2, 9] as const;
const INPUT_RANGE = [-50, 50] as const;
export const TEMPLATE_MESSAGE = 'a template function of the input numbers';

/**
 * One template task; `inputs` = 1 for a triplet, N for an induction task (pairwise distinct), each input in
 * INPUT_RANGE narrowed to the run's [−inputBound, inputBound] (a model proposing only small inputs should
 * not be seeded with inputs it may not propose).
 */
export function templateTask(
  rng: Rng,
  type: TaskEntry['type'],
  nInputs: number,
  inputBound: number = INPUT_RANGE[1],
): TemplateTask {
  const bound = Math.min(INPUT_RANGE[1], inputBound);
  const make = rng.choice(FAMILY);
  const src = make(rng.int(...CONSTANT_RANGE), rng.int(...MODULUS_RANGE));
  const parsed = parseProgram(src);
  if (!parsed.ok) throw new Error(`template ${src} does not parse: ${parsed.message}`);
  const program = parsed.value;
  const arity = program.params.length;
  const seen = new Set<string>();
  const inputs: number[][] = [];
  while (inputs.length < nInputs) {
    const tuple = Array.from({ length: arity }, () => rng.int(Math.max(INPUT_RANGE[0], -bound), bound));
    if (seen.has(tuple.join(','))) continue;
    seen.add(tuple.join(','));
    inputs.push(tuple);
  }
  const outputs = inputs.map((t) => {
    const v = evaluateProgram(program, t.map(BigInt));
    if (!v.ok) throw new Error(`template ${src} fails on ${t}: ${v.message}`);
    return Number(v.value);
  });
  return {
    type,
    program: printProgram(program),
    arity,
    inputs,
    outputs,
    closed: inputs.map((t) => closedForm(program, t.map(BigInt))),
    binaryOps: binaryOpCount(program.body),
    ...(type === 'ind' ? { message: TEMPLATE_MESSAGE } : {}),
  };
}
