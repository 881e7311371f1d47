// The hot-path dispatcher: every kernel call site ("L3.qkv", "lm.chunk0", ...) gets its uniform buffer
// and bind group created once per distinct parameter set and reused on every later step, so a decode
// step records dispatches without creating buffers or bind groups. It also counts dispatches and the
// weight bytes they stream.
// A bench can hand it a DispatchProfiler (kernel-profiler.ts), which then runs every dispatch in its own
// timed pass; the hot path pays one null check for it.

export interface Kernel<A> {
  pipelineFor(args: A): GPUComputePipeline;
  /** The uniform block (binding 0). */
  params(args: A): ArrayBuffer;
  /** Storage buffers, bound at 1, 2, ... in order. */
  buffers(args: A): GPUBuffer[];
  workgroups(args: A): [number, number, number];
  /**
   * Bytes of model weight matrices one workgroup of this dispatch streams (0 or absent: none; an
   * adapter's matrices do not count). The dispatcher multiplies it by the grid, where the pass is
   * encoded, so fused work cannot escape the count.
   */
  weightBytesPerWorkgroup?(args: A): number;
}

/** Takes over dispatches while set on a Dispatcher (bench-only: per-kernel GPU timings). */
export interface DispatchProfiler {
  dispatch(
    site: string,
    pipeline: GPUComputePipeline,
    bindGroup: GPUBindGroup,
    workgroups: [number, number, number],
  ): void;
}

interface Entry {
  hex: string;
  uniform: GPUBuffer;
  bindGroup: GPUBindGroup;
}

/** Bytes of the uniform buffers the dispatcher owns (the engine reports them as scratch). */
export class Dispatcher {
  private readonly cache = new Map<string, Entry>();
  /** Dispatches recorded since creation (the bench reads the difference around a decode step). */
  dispatches = 0;
  /** Model weight bytes those dispatches streamed (Kernel.weightBytesPerWorkgroup × grid). */
  weightBytes = 0;
  uniformBytes = 0;
  /**
   * While set, dispatches go to the profiler instead of the caller's pass (which stays empty). The
   * profiler submits each one at once: its work precedes whatever the caller submits afterwards, and
   * also anything the caller recorded earlier in the same encoder. Generation records nothing but
   * dispatches before its readback copy, so it profiles correctly; code that copies first does not.
   */
  profiler: DispatchProfiler | null = null;

  constructor(private readonly device: GPUDevice) {}

  /**
   * Records one dispatch. A `dynamic` site keeps a single uniform buffer that is rewritten when its
   * parameters change (a decode step's counter, a moving output offset): use it at most once per
   * queue submission, since the write lands before the whole submission runs.
   */
  dispatch<A>(pass: GPUComputePassEncoder, site: string, kernel: Kernel<A>, args: A, dynamic = false): void {
    const pipeline = kernel.pipelineFor(args);
    const params = kernel.params(args);
    const hex = hexOf(params);
    const key = dynamic ? site : `${site}|${hex}`;
    let entry = this.cache.get(key);
    if (entry && dynamic && entry.hex !== hex) {
      this.device.queue.writeBuffer(entry.uniform, 0, params);
      entry.hex = hex;
    }
    if (!entry) {
      const uniform = this.device.createBuffer({
        size: Math.max(16, Math.ceil(params.byteLength / 16) * 16),
        usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
        label: `${site} params`,
      });
      this.uniformBytes += uniform.size;
      this.device.queue.writeBuffer(uniform, 0, params);
      const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: uniform } }];
      kernel.buffers(args).forEach((buffer, i) => entries.push({ binding: i + 1, resource: { buffer } }));
      const bindGroup = this.device.createBindGroup({
        layout: pipeline.getBindGroupLayout(0),
        entries,
        label: site,
      });
      entry = { uniform, bindGroup, hex };
      this.cache.set(key, entry);
    }
    const [x, y, z] = kernel.workgroups(args);
    if (x === 0 || y === 0 || z === 0) return;
    this.weightBytes += x * y * z * (kernel.weightBytesPerWorkgroup?.(args) ?? 0);
    if (this.profiler) {
      this.profiler.dispatch(site, pipeline, entry.bindGroup, [x, y, z]);
      this.dispatches++;
      return;
    }
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, entry.bindGroup);
    pass.dispatchWorkgroups(x, y, z);
    this.dispatches++;
  }

  /** Forgets cached bind groups (call when buffers a site binds are replaced, e.g. a new LoRA adapter). */
  clear(): void {
    for (const e of this.cache.values()) e.uniform.destroy();
    this.cache.clear();
    this.uniformBytes = 0;
  }
}

function hexOf(buf: ArrayBuffer): string {
  const u = new Uint32Array(buf);
  let s = '';
  for (let i = 0; i < u.length; i++) s += u[i].toString(16) + ',';
  return s;
}

/** A compute pipeline with an auto layout (each kernel's bindings follow the Kernel convention). */
export function computePipeline(device: GPUDevice, code: string, label: string): GPUComputePipeline {
  const module = device.createShaderModule({ code, label });
  return device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' }, label });
}
