// The import graph of src/ (type-only and dynamic imports included) has no cycles and only the arrows of
// the "Allowed imports" table in DESIGN.md; engine/reference (the oracle) is imported only by tests, the
// CPU backend, the matmul check and the ONNX check's reference oracle. Also the size rules of issue 16:
// the Lab stays a façade and one AZR step has no non-null assertions.
import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const SRC = resolve(import.meta.dirname, '../../src');

interface Edge {
  from: string;
  to: string;
  typeOnly: boolean;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return sourceFiles(p);
    return /\.(ts|svelte)$/.test(name) ? [p] : [];
  });
}

/** The TypeScript of a file (a .svelte file's <script> blocks). */
function scriptOf(path: string): string {
  const text = readFileSync(path, 'utf8');
  if (!path.endsWith('.svelte')) return text;
  return [...text.matchAll(/<script[^>]*>([\s\S]*?)<\/script>/g)].map((m) => m[1]).join('\n');
}

function resolveSpec(from: string, spec: string): string | null {
  const base = resolve(dirname(from), spec);
  const hit = [base, base.replace(/\.js$/, '.ts'), `${base}.ts`, join(base, 'index.ts')].find(
    (c) => existsSync(c) && statSync(c).isFile(),
  );
  return hit && hit.startsWith(SRC + '/') ? relative(SRC, hit) : null;
}

/** Every relative import of a file: static (type-only marked), re-exports and dynamic `import()`. */
function importsOf(path: string): Edge[] {
  const from = relative(SRC, path);
  const sf = ts.createSourceFile(path, scriptOf(path), ts.ScriptTarget.Latest, true);
  const edges: Edge[] = [];
  const add = (spec: string, typeOnly: boolean) => {
    if (!spec.startsWith('.')) return;
    const to = resolveSpec(path, spec);
    if (to) edges.push({ from, to, typeOnly });
  };
  const visit = (node: ts.Node) => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const clause = node.importClause;
      const named = clause?.namedBindings;
      const allTypeNames =
        !!named &&
        ts.isNamedImports(named) &&
        named.elements.length > 0 &&
        !clause.name &&
        named.elements.every((e) => e.isTypeOnly);
      add(node.moduleSpecifier.text, !!clause && (clause.isTypeOnly || allTypeNames));
    } else if (
      ts.isExportDeclaration(node) &&
      node.moduleSpecifier &&
      ts.isStringLiteral(node.moduleSpecifier)
    ) {
      add(node.moduleSpecifier.text, node.isTypeOnly);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      const lit = node.argument.literal;
      if (ts.isStringLiteral(lit)) add(lit.text, true);
    } else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0] &&
      ts.isStringLiteral(node.arguments[0])
    ) {
      add(node.arguments[0].text, false);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return edges;
}

/** A file's layer: its top-level folder, or the root file's name without `.ts`. */
function layerOf(file: string): string {
  const parts = file.split('/');
  return parts.length === 1 ? parts[0].replace(/\.ts$/, '') : parts[0];
}

// DESIGN.md, "Allowed imports": each layer imports only what its row lists (and itself).
const BASE = ['config', 'policy', 'random', 'version'];
const ALLOWED: Record<string, readonly string[]> = {
  config: [],
  policy: [],
  random: [],
  version: [],
  arith: ['config'],
  model: ['config', 'policy', 'random'],
  selfplay: ['arith', 'config', 'policy', 'random'],
  engine: ['model', 'config', 'policy', 'random'],
  store: ['model', 'selfplay/types.ts', 'config'],
  export: [
    'model',
    'engine',
    'store',
    'selfplay/types.ts',
    'config',
    'selfplay/prompts.ts',
    'selfplay/format.ts',
  ],
  // onnx/generator.ts implements Policy for onnxruntime, as the engine does: the seam's types are its too.
  onnx: ['model', 'engine', 'store', 'selfplay/types.ts', 'config', 'export', 'policy'],
  experiments: ['model', 'engine', 'store', 'selfplay/types.ts', 'config'],
  protocol: ['*types'],
  trainer: ['*'],
  app: ['*'],
};
/** Layers whose types protocol.ts may use (type-only imports). */
const BELOW_PROTOCOL = [
  'config',
  'arith',
  'model',
  'selfplay',
  'engine',
  'store',
  'export',
  'onnx',
  'experiments',
];
/** Who may import the oracle (besides tests and the oracle itself). */
const REFERENCE_USERS = ['engine/cpu-generate.ts', 'engine/matmul-check.ts', 'onnx/reference-oracle.ts'];

function allowed(e: Edge): boolean {
  const from = layerOf(e.from);
  const to = layerOf(e.to);
  if (from === to) return true;
  // A new top-level folder sits at the trainer's level: it may import everything but the app.
  const row = ALLOWED[from] ?? ['*'];
  if (row.includes('*')) return to !== 'app' || from === 'app';
  if (row.includes('*types')) return e.typeOnly && (BELOW_PROTOCOL.includes(to) || BASE.includes(to));
  return row.includes(to) || row.includes(e.to);
}

function cycles(edges: readonly Edge[], nodes: readonly string[]): string[][] {
  const out = new Map<string, string[]>(nodes.map((n) => [n, []]));
  for (const e of edges) out.get(e.from)?.push(e.to);
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  let next = 0;
  const strong = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of out.get(v) ?? []) {
      if (!index.has(w)) {
        strong(w);
        low.set(v, Math.min(low.get(v) ?? 0, low.get(w) ?? 0));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v) ?? 0, index.get(w) ?? 0));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string | undefined;
      do {
        w = stack.pop();
        if (w === undefined) break;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (out.get(v) ?? []).includes(v)) found.push(component.sort());
    }
  };
  for (const n of nodes) if (!index.has(n)) strong(n);
  return found;
}

const files = sourceFiles(SRC);
const nodes = files.map((f) => relative(SRC, f));
const edges = files.flatMap(importsOf);

describe('the import graph of src/', () => {
  it('is read in full (sanity: the parser finds the known seams)', () => {
    expect(nodes.length).toBeGreaterThan(200);
    expect(edges).toContainEqual({ from: 'selfplay/runner.ts', to: 'selfplay/context.ts', typeOnly: true });
    expect(edges.some((e) => e.from === 'trainer/lab.ts' && e.to === 'trainer/onnx-bridge.ts')).toBe(true);
  });

  it('has no import cycles', () => {
    expect(cycles(edges, nodes)).toEqual([]);
  });

  it('has only the arrows of the Allowed imports table', () => {
    const bad = edges
      .filter((e) => !allowed(e))
      .map((e) => `${e.from} → ${e.to}${e.typeOnly ? ' (type)' : ''}`);
    expect(bad).toEqual([]);
  });

  it('imports the oracle (engine/reference) only from the CPU backend, the matmul check and the ONNX oracle', () => {
    const users = edges
      .filter((e) => e.to.startsWith('engine/reference/') && !e.from.startsWith('engine/reference/'))
      .map((e) => e.from);
    expect([...new Set(users)].filter((u) => !REFERENCE_USERS.includes(u))).toEqual([]);
  });

  it('lets selfplay and engine meet only through policy.ts', () => {
    const crossing = edges.filter(
      (e) =>
        (layerOf(e.from) === 'selfplay' && layerOf(e.to) === 'engine') ||
        (layerOf(e.from) === 'engine' && layerOf(e.to) === 'selfplay'),
    );
    expect(crossing).toEqual([]);
  });
});

describe('the size rules of the architecture issue', () => {
  it('keeps the Lab a façade of at most 500 lines', () => {
    const lines = readFileSync(join(SRC, 'trainer/lab.ts'), 'utf8').split('\n').length;
    expect(lines).toBeLessThanOrEqual(500);
  });

  it('has no non-null assertions in one AZR step', () => {
    for (const file of ['selfplay/azr-step.ts', 'selfplay/azr-phases.ts', 'selfplay/azr-report.ts']) {
      const sf = ts.createSourceFile(
        file,
        readFileSync(join(SRC, file), 'utf8'),
        ts.ScriptTarget.Latest,
        true,
      );
      const found: number[] = [];
      const visit = (n: ts.Node) => {
        if (ts.isNonNullExpression(n)) found.push(sf.getLineAndCharacterOfPosition(n.getStart()).line + 1);
        ts.forEachChild(n, visit);
      };
      visit(sf);
      expect(found, file).toEqual([]);
    }
  });
});
