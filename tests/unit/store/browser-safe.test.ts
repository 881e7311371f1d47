import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

// The trainer worker bundles src/store for the browser: only node-*.ts may use Node
// built-ins or import Node-only files (here or in src/model).
const importsOf = (text: string) =>
  [...text.matchAll(/^\s*(?:import|export)[^'"]*from\s*['"]([^'"]+)['"]/gm)].map((m) => m[1]);
const nodeOnlyImport = (i: string) =>
  i.startsWith('node:') ||
  /(^|\/)node(-[^/]*)?(\.ts)?$/.test(i) ||
  ['fs', 'path', 'crypto', 'os'].includes(i);

describe('src/store browser safety', () => {
  const dir = new URL('../../../src/store/', import.meta.url);
  const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));
  const nodeOnly = (f: string) => /^node(-.*)?\.ts$/.test(f);

  it('has its Node-only files marked by name (and the import check sees their imports)', () => {
    expect(files.filter(nodeOnly).sort()).toEqual([
      'node-archive.ts',
      'node-checkpoints.ts',
      'node-fs.ts',
      'node-lock.ts',
      'node-run-folder.ts',
      'node-run-store.ts',
    ]);
    expect(importsOf(readFileSync(new URL('node-archive.ts', dir), 'utf8')).filter(nodeOnlyImport)).toEqual([
      'node:fs/promises',
      'node:path',
      '../model/node-folder.ts',
      './node-fs.ts',
    ]);
  });

  for (const f of files.filter((name) => !nodeOnly(name))) {
    it(`${f} imports no Node built-in and no Node-only file`, () => {
      expect(importsOf(readFileSync(new URL(f, dir), 'utf8')).filter(nodeOnlyImport)).toEqual([]);
    });
  }
});
