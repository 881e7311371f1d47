// Per-kernel GPU timings with 'timestamp-query' (the bench's profiling mode). Given to a Dispatcher
// (`dispatcher.profiler = p`), it runs each dispatch in its own compute pass whose timestampWrites
// record the pass's start and end in a query set, submitted at once; `read()` resolves every query
// and reads them back in one copy. Profiled work is slower than the normal single-pass recording (a
// pass and a submission per dispatch), so wall times of a profiled step are not the engine's speed —
// the per-kernel GPU durations are what it is for. Browser-safe.
import type { DispatchProfiler } from './dispatch.ts';

/** Queries per query set (WebGPU's maximum count): two per dispatch. */
const QUERIES_PER_SET = 4096;

export interface DispatchTiming {
  site: string;
  /** GPU time of the dispatch's pass, ns (end − start timestamp). */
  ns: number;
}

export interface ProfileRead {
  timings: DispatchTiming[];
  /**
   * The coarsest step seen in the timestamps: the greatest common divisor of their offsets from the
   * first one, ns. Dawn quantizes timestamps unless told not to, so durations are multiples of it.
   */
  resolutionNs: number;
}

/** Why per-kernel timings cannot be taken on `device`, or null when they can. */
export function profilingUnavailable(device: GPUDevice): string | null {
  return device.features.has('timestamp-query')
    ? null
    : "the device has no 'timestamp-query' feature (the adapter does not offer it, or it was not granted)";
}

export class KernelProfiler implements DispatchProfiler {
  private readonly sets: GPUQuerySet[] = [];
  private readonly sites: string[] = [];

  constructor(private readonly device: GPUDevice) {
    const why = profilingUnavailable(device);
    if (why) throw new Error(`per-kernel timings are unavailable: ${why}`);
  }

  /** Dispatches recorded so far. */
  get count(): number {
    return this.sites.length;
  }

  dispatch(
    site: string,
    pipeline: GPUComputePipeline,
    bindGroup: GPUBindGroup,
    [x, y, z]: [number, number, number],
  ): void {
    const i = this.sites.length;
    const perSet = QUERIES_PER_SET / 2;
    if (i % perSet === 0) {
      this.sets.push(
        this.device.createQuerySet({ type: 'timestamp', count: QUERIES_PER_SET, label: 'kernel timings' }),
      );
    }
    const at = (i % perSet) * 2;
    const enc = this.device.createCommandEncoder();
    const pass = enc.beginComputePass({
      label: site,
      timestampWrites: {
        querySet: this.sets[this.sets.length - 1],
        beginningOfPassWriteIndex: at,
        endOfPassWriteIndex: at + 1,
      },
    });
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
    pass.end();
    this.device.queue.submit([enc.finish()]);
    this.sites.push(site);
  }

  /** Resolves and reads back every timestamp recorded (one submission, one readback). */
  async read(): Promise<ProfileRead> {
    const n = this.sites.length;
    if (n === 0) return { timings: [], resolutionNs: 0 };
    const bytes = n * 2 * 8;
    const resolved = this.device.createBuffer({
      size: bytes,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
      label: 'kernel timings resolved',
    });
    const staging = this.device.createBuffer({
      size: bytes,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      label: 'kernel timings readback',
    });
    const enc = this.device.createCommandEncoder();
    this.sets.forEach((set, s) => {
      const queries = Math.min(QUERIES_PER_SET, 2 * n - s * QUERIES_PER_SET);
      enc.resolveQuerySet(set, 0, queries, resolved, s * QUERIES_PER_SET * 8);
    });
    enc.copyBufferToBuffer(resolved, 0, staging, 0, bytes);
    this.device.queue.submit([enc.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const stamps = new BigUint64Array(staging.getMappedRange().slice(0));
    staging.unmap();
    resolved.destroy();
    staging.destroy();
    const timings = this.sites.map((site, i) => ({ site, ns: Number(stamps[2 * i + 1] - stamps[2 * i]) }));
    let resolutionNs = 0n;
    for (const t of stamps) resolutionNs = gcd(resolutionNs, t > stamps[0] ? t - stamps[0] : stamps[0] - t);
    return { timings, resolutionNs: Number(resolutionNs) };
  }

  destroy(): void {
    for (const s of this.sets) s.destroy();
    this.sets.length = 0;
    this.sites.length = 0;
  }
}

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

/**
 * The kind of kernel a dispatch site runs, for per-kind totals: the layer index, vocabulary chunk and
 * matmul mode dropped ("L3.gemv.qkv" → "qkv", "lm0.gemv" → "lm head", "embed1" / "embedS1" (reading the sampler's ids) → "embed",
 * "L3.q_proj.loraA" → "lora", "L3.gemv.qkv+lora" → "qkv+lora" (the fused LoRA epilogue), "L3.norm1" →
 * "norm", "head.norm" → "final norm").
 */
export function kernelKind(site: string): string {
  if (/^embedS?\d*$/.test(site)) return 'embed';
  if (/^lm\d+\./.test(site)) return 'lm head';
  if (site === 'head.norm') return 'final norm';
  const op = site.replace(/^L\d+\./, '').replace(/^(gemv|gemm)\./, '');
  if (/\.lora[AB]$/.test(op)) return 'lora';
  if (/^norm\d$/.test(op)) return 'norm';
  return op;
}

export interface KindTiming {
  kind: string;
  dispatches: number;
  ms: number;
  /** Share of the summed GPU time of all dispatches of the phase (0..1). */
  share: number;
}

/** Totals per kernel kind, largest first. */
export function timingsByKind(timings: readonly DispatchTiming[]): KindTiming[] {
  const byKind = new Map<string, { dispatches: number; ns: number }>();
  let total = 0;
  for (const t of timings) {
    const k = kernelKind(t.site);
    const e = byKind.get(k) ?? { dispatches: 0, ns: 0 };
    e.dispatches++;
    e.ns += t.ns;
    total += t.ns;
    byKind.set(k, e);
  }
  return [...byKind.entries()]
    .map(([kind, e]) => ({
      kind,
      dispatches: e.dispatches,
      ms: e.ns / 1e6,
      share: total > 0 ? e.ns / total : 0,
    }))
    .sort((a, b) => b.ms - a.ms || a.kind.localeCompare(b.kind));
}
