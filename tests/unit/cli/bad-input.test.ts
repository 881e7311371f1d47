// Bad input at every boundary (issue 19, item 5): each one gets ONE line on stderr (`tabzero: what
// happened, what to do`), a non-zero exit code, and nothing written half — no run folder created, no run
// imported, no export files. None of these reaches the GPU: every input is refused before the engine
// loads (stderr would show "loaded N weight tensors onto the GPU").
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../../cli/main.ts';
import { initLora, savePeftLora } from '../../../src/model/lora.ts';
import { nodeFolderSink } from '../../../src/model/node-folder.ts';
import { parseQwen2Config } from '../../../src/model/qwen2-config.ts';
import { generateTinyModel } from '../../../src/model/tiny-model.ts';
import { byteTokenizerFiles } from '../../../src/model/tokenizer-files.ts';
import { bytesSource } from '../../../src/model/byte-source.ts';
import { memorySink } from '../../../src/model/safetensors-write.ts';
import { readTarIndex, writeTar } from '../../../src/store/tar.ts';

const FIXTURE_RUN = resolve(import.meta.dirname, '../../fixtures/runs/format-1-folder');
const FIXTURE_ARCHIVE = resolve(import.meta.dirname, '../../fixtures/runs/format-1.tabzero.tar');

let root: string;
/** A small byte-tokenizer model: not the model the fixture run was trained on (sha256 abab…). */
let model: string;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'tabzero-bad-input-'));
  model = join(root, 'model');
  await generateTinyModel(await nodeFolderSink(model), {
    seed: 1,
    dtype: 'F32',
    tokenizerFiles: byteTokenizerFiles(),
    tokenizerKind: 'bytes',
    hidden: 32,
    layers: 1,
    intermediate: 64,
  });
});
afterAll(() => rmSync(root, { recursive: true, force: true }));
afterEach(() => {
  vi.restoreAllMocks();
  process.exitCode = undefined;
});

/** Runs the CLI; returns its exit code, stdout and stderr. */
async function tabzero(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((s) => (out.push(String(s)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((s) => (err.push(String(s)), true));
  try {
    const code = await main(argv);
    return { code, out: out.join(''), err: err.join('') };
  } finally {
    vi.restoreAllMocks();
  }
}

/** Expects exit code 1, nothing on stdout and exactly `tabzero: <message>` on stderr. */
function expectOneLine(r: { code: number; out: string; err: string }, message: string | RegExp): void {
  expect(r.out).toBe('');
  expect(r.err.endsWith('\n')).toBe(true);
  const lines = r.err.slice(0, -1).split('\n');
  expect(lines, r.err).toHaveLength(1);
  if (typeof message === 'string') expect(lines[0]).toBe(`tabzero: ${message}`);
  else expect(lines[0]).toMatch(message);
  expect(r.code).toBe(1);
}

let runs = 0;
/** A copy of the format-1 fixture run (trained on tabzero/tiny, sha256 abab…), run.json edited. */
function runFolder(edit?: (runJson: string) => string): string {
  const dir = join(root, `run-${++runs}`);
  cpSync(FIXTURE_RUN, dir, { recursive: true });
  if (edit) writeFileSync(join(dir, 'run.json'), edit(readFileSync(join(dir, 'run.json'), 'utf8')));
  return dir;
}

/** Every file under `dir` with its content, to check that a refused command left it as it was. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort()) {
    const file = join(dir, name);
    try {
      out[name] = readFileSync(file, 'base64');
    } catch {
      out[name] = '(folder)';
    }
  }
  return out;
}

/** The commands that open an existing run folder, with the outputs they would write. */
function runCommands(run: string): { argv: string[]; outputs: string[] }[] {
  const out = join(root, `out-${++runs}`);
  return [
    {
      argv: ['train', '--model', model, '--preset', 'smoke', '--resume', '--out', run],
      outputs: [],
    },
    { argv: ['export', '--run', run, '--format', 'jsonl', '--out', out], outputs: [out] },
    { argv: ['export', '--run', run, '--format', 'archive', '--out', `${out}.tar`], outputs: [`${out}.tar`] },
    {
      argv: ['export', '--run', run, '--format', 'seed-set', '--out', `${out}.jsonl`],
      outputs: [`${out}.jsonl`],
    },
    { argv: ['eval', '--model', model, '--adapter', run, '--limit', '1'], outputs: [] },
    { argv: ['compare', run, FIXTURE_RUN], outputs: [] },
  ];
}

async function expectRunRefused(run: string, message: string | RegExp): Promise<void> {
  const before = snapshot(run);
  for (const { argv, outputs } of runCommands(run)) {
    const r = await tabzero(...argv);
    expectOneLine(r, message);
    for (const o of outputs) expect(existsSync(o), `${argv[0]} wrote ${o}`).toBe(false);
    expect(snapshot(run), argv.join(' ')).toEqual(before);
  }
}

describe('bad input: a run folder from a newer TabZero', () => {
  it('train --resume, export, eval --adapter and compare refuse it with one line and write nothing', async () => {
    const run = runFolder((t) => t.replace('"formatVersion": 1', '"formatVersion": 7'));
    await expectRunRefused(
      run,
      `${run}/run.json: written by a newer TabZero (tabzero-run format version 7; this TabZero reads up to 1). ` +
        'Update TabZero to open it.',
    );
  });
});

describe('bad input: a damaged run.json', () => {
  const action =
    'so TabZero cannot open the run: restore run.json from a backup (or import the run from an archive), or start a new run in another folder.';

  it('truncated JSON', async () => {
    const run = runFolder((t) => t.slice(0, 100));
    await expectRunRefused(
      run,
      new RegExp(
        `^tabzero: ${esc(run)}/run\\.json is damaged \\(not valid JSON: Unterminated string in JSON at position 100.*\\), ${esc(action)}$`,
      ),
    );
  });

  it('not an object', async () => {
    const run = runFolder(() => '[1, 2]\n');
    await expectRunRefused(run, `${run}/run.json is damaged (not a JSON object), ${action}`);
  });

  it('required fields missing', async () => {
    const run = runFolder((t) => {
      const j = JSON.parse(t);
      delete j.model;
      delete j.snapshots;
      j.step = 'three';
      return JSON.stringify(j);
    });
    await expectRunRefused(
      run,
      `${run}/run.json is damaged (model, step, snapshots missing or of the wrong type), ${action}`,
    );
  });
});

describe('bad input: a seed set that is not one', () => {
  const action = "use a run's seed.jsonl or an exported seed set (tabzero export --format seed-set)";
  const cases: [string, string, string][] = [
    [
      'an eval-set JSONL',
      '{"id":"a","prompt":"Calculate: 1 + 2 = ","answer":"3"}\n',
      'line 1 is not a tabzero-seed-set header',
    ],
    ['random text', 'hello, no seed set here', 'line 1 is not JSON'],
    ['an empty file', '', 'the file is empty'],
  ];
  for (const [what, text, problem] of cases) {
    it(`train --seed-set refuses ${what} before creating the run folder`, async () => {
      const file = join(root, `seed-${++runs}.jsonl`);
      writeFileSync(file, text);
      const out = join(root, `seeded-${runs}`);
      const r = await tabzero(
        ...['train', '--model', model, '--preset', 'smoke', '--steps', '1', '--seed-set', file, '--out', out],
      );
      expectOneLine(r, `${file}: not a seed set (${problem}); ${action}`);
      expect(existsSync(out)).toBe(false);
    });
  }
});

describe('bad input: an archive with a path outside its root', () => {
  for (const evil of ['../evil.txt', '/tmp/tabzero-evil.txt', 'buffers/../../evil.txt']) {
    it(`import refuses an entry "${evil}" before writing anything`, async () => {
      // The fixture archive, with one more entry.
      const bytes = new Uint8Array(readFileSync(FIXTURE_ARCHIVE));
      const source = bytesSource(bytes);
      const files = [];
      for (const e of await readTarIndex(source, 'fixture'))
        files.push({ name: e.name, data: await source.read(e.offset, e.size) });
      files.push({ name: evil, data: new TextEncoder().encode('gotcha\n') });
      const sink = memorySink();
      await writeTar(sink, files);
      const parent = join(root, `import-${++runs}`);
      mkdirSync(parent);
      const archive = join(parent, 'evil.tabzero.tar');
      writeFileSync(archive, sink.bytes());

      const r = await tabzero('import', archive, '--out', join(parent, 'run'));
      expectOneLine(
        r,
        `${archive}: entry "${evil}" points outside the archive (an absolute path or ".."), so TabZero reads none of it: ` +
          'this is not a run archive as TabZero writes them; export the run again where it was trained.',
      );
      expect(readdirSync(parent)).toEqual(['evil.tabzero.tar']);
      expect(existsSync(join(root, 'evil.txt'))).toBe(false);
      expect(existsSync('/tmp/tabzero-evil.txt')).toBe(false);
    });
  }
});

describe('bad input: an adapter of another base model', () => {
  const trainedOn = 'tabzero/tiny@main (sha256 abababababab…)';
  const loaded = 'local/model@local (sha256 ';

  it('eval --adapter refuses a run trained on another model (the sha256 decides)', async () => {
    const r = await tabzero('eval', '--model', model, '--adapter', FIXTURE_RUN, '--limit', '1');
    expectOneLine(
      r,
      new RegExp(
        `^tabzero: Run "format-1-folder" was trained on ${esc(trainedOn)}, but the loaded model is ${esc(loaded)}[0-9a-f]{12}…\\)\\. ` +
          'Evaluate it with the model it was trained on \\(--model\\)\\.$',
      ),
    );
  });

  it('export --format hf, peft and onnx (to a folder or a .zip) refuse another base model and write no file', async () => {
    for (const [format, out] of [
      ['hf', join(root, `hf-${++runs}`)],
      ['hf', join(root, `hf-${++runs}.zip`)],
      ['peft', join(root, `peft-${++runs}`)],
      ['onnx', join(root, `onnx-${++runs}`)],
    ]) {
      const r = await tabzero(
        'export',
        '--run',
        FIXTURE_RUN,
        '--format',
        format,
        '--model',
        model,
        '--out',
        out,
      );
      expectOneLine(
        r,
        new RegExp(
          `^tabzero: Run "format-1-folder" was trained on ${esc(trainedOn)}, but the loaded model is ${esc(loaded)}[0-9a-f]{12}…\\)\\. ` +
            'Export it with the model it was trained on \\(--model\\)\\.$',
        ),
      );
      expect(existsSync(out), out).toBe(false);
    }
  });

  it('eval --adapter refuses a PEFT folder whose shapes do not fit the model', async () => {
    // An adapter for a model of hidden size 48 (the model here has 32).
    const other = parseQwen2Config(JSON.parse(readFileSync(join(model, 'config.json'), 'utf8')));
    const shape = { ...other, hiddenSize: 48, headDim: 12 };
    const dir = join(root, `peft-${++runs}`);
    mkdirSync(dir);
    writeFileSync(
      join(dir, 'adapter_config.json'),
      JSON.stringify({ peft_type: 'LORA', r: 4, lora_alpha: 8 }),
    );
    writeFileSync(
      join(dir, 'adapter_model.safetensors'),
      await savePeftLora(shape, initLora(shape, { rank: 4, alpha: 8, targets: ['q_proj', 'v_proj'] }, 1)),
    );
    const r = await tabzero('eval', '--model', model, '--adapter', dir, '--limit', '1');
    expectOneLine(
      r,
      `${dir}/adapter_model.safetensors: base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight is [4, 48], ` +
        "but this model's q_proj takes [4, 32]: the adapter belongs to another base model; use it with the model it was trained on.",
    );
  });
});

describe('bad input: a tokenizer with ids past the vocabulary', () => {
  it('a model folder whose tokenizer holds an id ≥ vocab_size is refused at load', async () => {
    const dir = join(root, `vocab-${++runs}`);
    cpSync(model, dir, { recursive: true });
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, vocab_size: 256 }));
    const before = snapshot(dir);
    const r = await tabzero('eval', '--model', dir, '--limit', '1');
    expectOneLine(
      r,
      `folder ${dir}: tokenizer.json has token id 258 ("<|im_end|>"), but config.json's vocab_size is 256 ` +
        '(ids 0 to 255): the tokenizer and the weights come from different models; use the tokenizer files that came with these weights.',
    );
    expect(snapshot(dir)).toEqual(before);
  });
});

function esc(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
