// The app imports src/experiments for its comparison view: nothing there may need Node.
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

describe('src/experiments browser safety', () => {
  it('imports no Node built-ins and no Node-only store files', () => {
    const dir = new URL('../../../src/experiments/', import.meta.url);
    const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));
    expect(files).toContain('compare.ts');
    for (const f of files) {
      const imports = [...readFileSync(new URL(f, dir), 'utf8').matchAll(/from '([^']+)'/g)].map((m) => m[1]);
      for (const spec of imports) {
        expect(spec, `${f} imports ${spec}`).not.toMatch(
          /^node:|^(fs|path|os|worker_threads)$|node-[\w-]+\.ts$/,
        );
      }
    }
  });
});
