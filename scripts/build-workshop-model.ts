// `npm run build:workshop-model [-- --work DIR]`: reproduces the shipped workshop model from its fixed
// seed — `tabzero pretrain --recipe workshop` into a work folder (resumed when it already holds a run, so
// a killed build continues), then copies the trained HF folder to public/models/tabzero-workshop/ with a
// model card: README.md for people, tabzero-card.json for the tests (the first 20 losses, the greedy raw
// predictions on the first 40 arith_eval_200 items, the pretraining curve).
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cacheDir } from '../cli/model-arg.ts';
import { MODEL_DIR, runPretrainCommand } from '../cli/commands/pretrain.ts';
import { parameterCount, parseQwen2Config } from '../src/model/qwen2-config.ts';
import { Sha256 } from '../src/model/sha256.ts';
import type { EvalReport } from '../src/selfplay/evaluate.ts';
import { NodeRunStore } from '../src/store/node-run-store.ts';
import { RECIPES, WORKSHOP_MODEL_PATH } from '../src/trainer/workshop-recipe.ts';

/** How many first-step losses and first eval items the card records (the gpu test replays them). */
export const CARD_LOSSES = 20;
export const CARD_PREDICTIONS = 40;

const args = process.argv.slice(2);
const workArg = args.indexOf('--work');
const work = workArg >= 0 ? args[workArg + 1] : join(cacheDir(), 'workshop-pretrain');
const target = fileURLToPath(new URL(`../${WORKSHOP_MODEL_PATH}`, import.meta.url));

const resume = existsSync(join(work, 'run.json'));
if (!existsSync(join(work, MODEL_DIR, 'model.safetensors')))
  await runPretrainCommand({ recipe: 'workshop', out: work, resume });

const reader = await new NodeRunStore(process.cwd()).readRun(work);
const meta = await reader.meta();
const steps = await reader.steps();
const evals = await reader.evals();
const config = meta.config;
const report = (step: number, set: string) =>
  evals.find((e) => e.step === step && e.name === `${set}:raw`)?.result as unknown as EvalReport | undefined;
const last = steps.at(-1)!.step;
const final = report(last, 'arith_eval_200');
const finalDev = report(last, 'workshop_dev_200');
if (!final || !finalDev) throw new Error(`the pretraining has no evals at its last step ${last}`);

await rm(target, { recursive: true, force: true });
await mkdir(target, { recursive: true });
for (const f of await readdir(join(work, MODEL_DIR)))
  await copyFile(join(work, MODEL_DIR, f), join(target, f));
const weights = await readFile(join(target, 'model.safetensors'));
const sha256 = new Sha256().update(weights).hexDigest();
const modelConfig = parseQwen2Config(
  JSON.parse(await readFile(join(target, 'config.json'), 'utf8')),
  'config',
);
const recipe = RECIPES.workshop;
const pct = (a: { accuracy: number }) => `${(a.accuracy * 100).toFixed(1)}%`;

const curve = evals
  .filter((e) => e.name.endsWith(':raw'))
  .map((e) => {
    const r = e.result as unknown as EvalReport;
    return {
      step: e.step,
      set: e.name.split(':')[0],
      accuracy: r.accuracy,
      formatFailureRate: r.formatFailureRate,
      perTier: Object.fromEntries(Object.entries(r.perTier).map(([k, v]) => [k, v.accuracy])),
    };
  });
const card = {
  name: 'tabzero-workshop',
  recipe: 'workshop',
  model: recipe.model,
  parameters: parameterCount(modelConfig),
  seed: config.seed,
  steps: last,
  stoppedBy: last < config.totalSteps ? 'stopping rule' : 'totalSteps',
  stoppingRule: `first eval with ${config.imitationStopSet} raw accuracy ≥ ${config.imitationStopAccuracy} (fixed before any self-play run)`,
  run: config,
  weightsSha256: sha256,
  weightsBytes: weights.length,
  arithEval200: {
    accuracy: final.accuracy,
    formatFailureRate: final.formatFailureRate,
    perTier: final.perTier,
  },
  workshopDev200: { accuracy: finalDev.accuracy, formatFailureRate: finalDev.formatFailureRate },
  firstLosses: steps.slice(0, CARD_LOSSES).map((s) => s.metrics.imitationLoss),
  predictions: final.items
    .slice(0, CARD_PREDICTIONS)
    .map((i) => ({ id: i.id, prediction: i.prediction, completion: i.completion })),
  losses: steps.map((s) => [s.step, s.metrics.imitationLoss]),
  curve,
};
await writeFile(join(target, 'tabzero-card.json'), JSON.stringify(card, null, 1) + '\n');

const tierRows = Object.entries(final.perTier)
  .map(([t, a]) => `| ${t} | ${a.correct}/${a.n} | ${pct(a)} |`)
  .join('\n');
const curveRows = curve
  .filter((c) => c.set === 'workshop_dev_200')
  .map((c) => {
    const pub = curve.find((x) => x.step === c.step && x.set === 'arith_eval_200');
    const loss = steps.find((s) => s.step === c.step)?.metrics.imitationLoss;
    return `| ${c.step} | ${loss === undefined || loss === null ? '–' : loss.toFixed(3)} | ${pct(c)} | ${pub ? pct(pub) : '–'} |`;
  })
  .join('\n');
const readme = `# TabZero workshop model

A ${(card.parameters / 1e6).toFixed(2)} M-parameter Qwen2-architecture model (${recipe.model.layers} layers × ${recipe.model.hidden},
${recipe.model.heads} heads, ${recipe.model.kvHeads} KV heads, MLP ${recipe.model.intermediate}, RoPE base ${recipe.model.ropeTheta}; byte-level tokenizer with ChatML
specials; f32, tied embeddings) that **TabZero made itself**: random weights from seed ${recipe.model.seed}, then
imitation-trained on the engine (full fine-tuning, AdamW) on **verifier-made data** — records of all six
Absolute Zero roles in the \`workshop\` prompt family, written by TabZero's own AZ-Arith generator and
verifier, with every expression of the eval sets left out. It is not a distillation of any other model.

Rebuild it byte for byte: \`npm run build:workshop-model\` (recipe \`src/trainer/workshop-recipe.ts\`).

| | |
|---|---|
| steps | ${last} of ${config.totalSteps} (${card.stoppedBy}) |
| stopping rule | ${card.stoppingRule} |
| records per step | ${config.imitationBatch} |
| learning rate | ${config.lr}, ${config.warmupSteps} warm-up steps, ${config.lrSchedule} to ${config.lrMinRatio}× |
| weights | model.safetensors, ${weights.length} bytes, SHA-256 \`${sha256}\` |

## arith_eval_200 (raw, greedy, all 200 items) at the last step

Overall ${pct(final)}, format failures ${(final.formatFailureRate * 100).toFixed(1)}%;
workshop_dev_200 (the development set the stopping rule reads) ${pct(finalDev)}.

| tier | correct | accuracy |
|---|---|---|
${tierRows}

## Pretraining curve

| step | loss | workshop_dev_200 | arith_eval_200 |
|---|---|---|---|
${curveRows}
`;
await writeFile(join(target, 'README.md'), readme);
process.stdout.write(
  `wrote ${target}: ${weights.length} bytes, sha256 ${sha256}, ${pct(final)} on arith_eval_200\n`,
);
