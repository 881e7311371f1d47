// GPU memory accounting: every buffer the engine allocates is booked under one category, so the UI and
// the CLI can say where the memory went (weights, KV cache, activations, scratch, LoRA).

export type MemoryCategory = 'weights' | 'kvCache' | 'activations' | 'scratch' | 'lora';
export const MEMORY_CATEGORIES: readonly MemoryCategory[] = [
  'weights',
  'kvCache',
  'activations',
  'scratch',
  'lora',
];

export type LedgerTotals = Record<MemoryCategory | 'total', number>;

export class MemoryLedger {
  private readonly bytes: Record<MemoryCategory, number> = {
    weights: 0,
    kvCache: 0,
    activations: 0,
    scratch: 0,
    lora: 0,
  };
  private readonly owned: { buffer: GPUBuffer; category: MemoryCategory }[] = [];

  constructor(private readonly device: GPUDevice) {}

  /** Creates a buffer and books it. Sizes round up to 4 bytes (and at least 16). */
  create(category: MemoryCategory, size: number, usage: GPUBufferUsageFlags, label: string): GPUBuffer {
    const buffer = this.device.createBuffer({ size: Math.max(16, Math.ceil(size / 4) * 4), usage, label });
    this.bytes[category] += buffer.size;
    this.owned.push({ buffer, category });
    return buffer;
  }

  /** A storage buffer (copyable both ways), booked under `category`. */
  storage(category: MemoryCategory, size: number, label: string): GPUBuffer {
    return this.create(
      category,
      size,
      GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
      label,
    );
  }

  /** Books memory allocated elsewhere (e.g. the dispatcher's uniform buffers). */
  book(category: MemoryCategory, size: number): void {
    this.bytes[category] += size;
  }

  report(): LedgerTotals {
    const total = MEMORY_CATEGORIES.reduce((n, c) => n + this.bytes[c], 0);
    return { ...this.bytes, total };
  }

  destroyAll(): void {
    for (const { buffer } of this.owned) buffer.destroy();
    this.owned.length = 0;
    for (const c of MEMORY_CATEGORIES) this.bytes[c] = 0;
  }
}
