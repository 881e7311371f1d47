import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { defaultConfig } from '../../../src/config.ts';
import { buildManifest, manifestJson, parseManifest } from '../../../src/export/manifest.ts';

const prov = {
  base: { repo: 'Qwen/Qwen2-0.5B-Instruct', revision: 'main', sha256: 'ab'.repeat(32) },
  runConfig: defaultConfig(),
  templates: { system: 'S' },
};

describe('tabzero.json', () => {
  it('round-trips and fills defaults for a run-less export', () => {
    const m = buildManifest('peft-adapter', prov, { lora: null, dtype: 'F32', files: ['a'] });
    expect(parseManifest(manifestJson(m))).toEqual(m);
    expect(m).toMatchObject({ run: null, tabzeroVersion: null, seed: prov.runConfig.seed, formatVersion: 1 });
    expect(Number.isNaN(Date.parse(m.createdAt))).toBe(false);
    // The manifest holds its own copy of the config.
    expect(m.config).not.toBe(prov.runConfig);
  });

  it('refuses other formats and newer versions with a message saying which', () => {
    const m = buildManifest('jsonl', prov, { lora: null, dtype: null, files: [] });
    expect(() => parseManifest('{"format":"tabzero-run","formatVersion":1}')).toThrow(
      /not a TabZero export manifest/,
    );
    expect(() => parseManifest(JSON.stringify({ ...m, formatVersion: 2 }))).toThrow(
      /newer TabZero .*version 2/,
    );
    expect(() => parseManifest(JSON.stringify({ ...m, formatVersion: 0 }))).toThrow(/positive integer/);
    expect(() => parseManifest('{')).toThrow(/not valid JSON/);
  });
});

// Everything in src/export except node-*.ts runs in the browser (the app zips its exports for download).
describe('src/export browser safety', () => {
  const dir = new URL('../../../src/export/', import.meta.url);
  const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));
  it('has node-only files marked by name', () => {
    expect(files.filter((f) => f.startsWith('node-'))).toEqual(['node-export-sink.ts']);
  });
  for (const f of files.filter((name) => !name.startsWith('node-'))) {
    it(`${f} imports no Node built-in and no node-* file`, () => {
      const src = readFileSync(new URL(f, dir), 'utf8');
      const imports = [...src.matchAll(/^\s*import[^'"]*['"]([^'"]+)['"]/gm)].map((m) => m[1]);
      expect(imports.filter((i) => i.startsWith('node:') || /(^|\/)node-[^/]*$/.test(i))).toEqual([]);
    });
  }
});
