// Node only: the onnxruntime side of the bench's side-by-side mode. Exports the bench's model folder to
// ONNX in a temporary folder (deleted on close) unless an export is given, and opens it on the chosen
// runtime: onnxruntime-web's WebGPU EP on Dawn (what transformers.js runs in browsers; the default),
// onnxruntime-node's WebGPU EP, or onnxruntime-node's CPU EP. The measuring itself is browser-safe
// (engine-bench.ts, src/onnx/speed.ts).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportOnnxFolder, loadOnnxNode } from '../src/onnx/node.ts';
import type { OnnxVariant } from '../src/onnx/qwen2-graph.ts';
import { loadOnnxWebGpuNode, ortWebVersion } from '../src/onnx/web-webgpu-node.ts';
import type { OnnxBaseline } from './engine-bench.ts';

export const ONNX_RUNTIMES = ['web-webgpu', 'node-webgpu', 'node-cpu'] as const;
export type OnnxRuntimeChoice = (typeof ONNX_RUNTIMES)[number];

export interface OnnxBaselineOptions {
  variant: OnnxVariant;
  runtime: OnnxRuntimeChoice;
  /** The model folder to export (ignored when onnxDir is given). */
  modelDir?: string;
  /** An existing export (`tabzero export --format onnx`) to use as it is. */
  onnxDir?: string;
  log?: (msg: string) => void;
}

export interface OpenedOnnxBaseline {
  baseline: OnnxBaseline;
  /** Releases the session and deletes the temporary export. */
  close(): Promise<void>;
}

async function nodeVersion(): Promise<string> {
  return (await import('onnxruntime-node')).env.versions.node ?? 'unknown';
}

export async function openOnnxBaseline(opts: OnnxBaselineOptions): Promise<OpenedOnnxBaseline> {
  let dir = opts.onnxDir;
  let temp: string | null = null;
  let exportMs: number | undefined;
  if (!dir) {
    if (!opts.modelDir) throw new Error('the onnx baseline needs a model folder to export, or an export');
    temp = dir = await mkdtemp(join(tmpdir(), 'tabzero-bench-onnx-'));
    opts.log?.(`exporting ${opts.modelDir} to ONNX (${opts.variant})...`);
    exportMs = (await exportOnnxFolder(opts.modelDir, dir, { variants: [opts.variant] })).elapsedMs;
  }
  const removeTemp = async () => {
    if (temp) await rm(temp, { recursive: true, force: true });
  };
  try {
    opts.log?.(`opening the ONNX model on ${opts.runtime}...`);
    let baseline: OnnxBaseline;
    if (opts.runtime === 'web-webgpu') {
      const lm = await loadOnnxWebGpuNode(dir, opts.variant);
      const runtime = `onnxruntime-web ${await ortWebVersion()}, WebGPU EP (Dawn in Node)`;
      baseline = { lm, runtime, variant: opts.variant, exportMs };
    } else {
      const ep = opts.runtime === 'node-webgpu' ? 'webgpu' : 'cpu';
      const lm = await loadOnnxNode(dir, opts.variant, { executionProvider: ep, threads: 1 });
      const runtime = `onnxruntime-node ${await nodeVersion()}, ${ep === 'webgpu' ? 'WebGPU EP (its own Dawn)' : 'CPU EP, 1 thread'}`;
      baseline = { lm, runtime, variant: opts.variant, exportMs };
    }
    return {
      baseline,
      close: async () => {
        await baseline.lm.release();
        await removeTemp();
      },
    };
  } catch (e) {
    await removeTemp();
    throw e;
  }
}
