import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

// Everything in src/model except node-*.ts runs in the browser too (the app generates its tiny model,
// downloads into OPFS and tokenizes there), so it must not import Node built-ins.
describe('src/model browser safety', () => {
  const dir = new URL('../../../src/model/', import.meta.url);
  const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));

  it('has node-only files marked by name', () => {
    expect(files.filter((f) => f.startsWith('node-')).sort()).toEqual([
      'node-folder.ts',
      'node-fs-store.ts',
      'node-model-server.ts',
      'node-qwen2-tokenizer.ts',
    ]);
  });

  for (const f of files.filter((name) => !name.startsWith('node-'))) {
    it(`${f} imports no Node built-in and no node-* file`, () => {
      const text = readFileSync(new URL(f, dir), 'utf8');
      const imports = [...text.matchAll(/^\s*import[^'"]*['"]([^'"]+)['"]/gm)].map((m) => m[1]);
      expect(
        imports.filter(
          (i) =>
            i.startsWith('node:') ||
            /(^|\/)node-[^/]*$/.test(i) ||
            ['fs', 'path', 'crypto', 'http'].includes(i),
        ),
      ).toEqual([]);
    });
  }
});
