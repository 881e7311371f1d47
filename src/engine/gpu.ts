// Device acquisition shared by the browser (navigator.gpu) and Node (npm `webgpu`, Dawn).
// Requests the adapter's own limits, treats shader-f16 / subgroups / timestamp-query as optional,
// supports compatibility mode, and reports what it got (the app's GPU panel and `tabzero gpu`).

/** Features we use when present; none is required. */
export const OPTIONAL_FEATURES = ['shader-f16', 'subgroups', 'timestamp-query'] as const;
export type OptionalFeature = (typeof OPTIONAL_FEATURES)[number];

/** Limits worth raising to the adapter's maximum (the defaults are far below what we need). */
export const REQUESTED_LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupsPerDimension',
] as const;
export type RequestedLimit = (typeof REQUESTED_LIMITS)[number];

export interface DeviceOptions {
  /** Ask for a compatibility-mode adapter (WebGPU compat: GL/D3D11 backends, lower limits). */
  compatibility?: boolean;
  powerPreference?: GPUPowerPreference;
  /** Features to leave off even when offered (tests use this to cover the no-f16 path). */
  disableFeatures?: OptionalFeature[];
}

/**
 * Chrome's and Dawn's experimental subgroup matrices (cooperative matrices: on NVIDIA the only route to
 * tensor cores from WebGPU). Detected and reported, never requested: no kernel uses them yet, so the
 * tiled matmul runs on every adapter until a subgroup-matrix path has been checked against the
 * reference on a GPU that offers the feature (issue 18).
 */
export const SUBGROUP_MATRIX_FEATURE = 'chromium-experimental-subgroup-matrix';

/** One matrix shape the adapter supports: left M×K and right K×N of `componentType`, result M×N. */
export interface SubgroupMatrixConfig {
  componentType: string;
  resultComponentType: string;
  M: number;
  N: number;
  K: number;
}

export interface SubgroupMatrixReport {
  /** Whether the adapter offers the feature. */
  offered: boolean;
  /** Its supported shapes (adapter.info.subgroupMatrixConfigs), empty when not offered. */
  configs: SubgroupMatrixConfig[];
  /** The matmul path the kernels take: always the tiled one today. */
  matmulPath: 'tiled';
}

/** What the adapter says of subgroup matrices. */
export function subgroupMatrixReport(adapter: {
  features: ReadonlySet<string>;
  info: object;
}): SubgroupMatrixReport {
  const offered = adapter.features.has(SUBGROUP_MATRIX_FEATURE);
  const raw = (adapter.info as { subgroupMatrixConfigs?: Iterable<Record<string, unknown>> })
    .subgroupMatrixConfigs;
  const configs =
    offered && raw
      ? Array.from(raw, (c) => ({
          componentType: String(c.componentType),
          resultComponentType: String(c.resultComponentType),
          M: Number(c.M),
          N: Number(c.N),
          K: Number(c.K),
        }))
      : [];
  return { offered, configs, matmulPath: 'tiled' };
}

export interface AdapterReport {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallbackAdapter: boolean;
  featureLevel: 'core' | 'compatibility';
  /** Optional features granted on the device. */
  features: Record<OptionalFeature, boolean>;
  limits: Record<RequestedLimit, number>;
  subgroupMatrix: SubgroupMatrixReport;
}

export interface GpuContext {
  device: GPUDevice;
  adapter: GPUAdapter;
  report: AdapterReport;
}

/**
 * The optional shader paths the kernels take, decided once per device from the granted features and
 * passed to each kernel's constructor (no global state): tests switch a path off with
 * `disableFeatures`, which removes the feature from the device itself.
 */
export interface ShaderFeatures {
  /** `shader-f16`: native f16 loads/stores of 16-bit data, and f16 multiplies for f16 weights. */
  f16: boolean;
  /** `subgroups`: reductions use subgroupAdd/subgroupMax inside a subgroup. */
  subgroups: boolean;
  /**
   * What kind of adapter the tile tables are for (matmul.ts MATMUL_TILES): 'cpu' for the software
   * adapters that run workgroups on CPU SIMD lanes (lavapipe/llvmpipe, SwiftShader), else 'gpu' (the
   * default when absent). Decided from the adapter's identity, never from a batch size.
   */
  adapterKind?: AdapterKind;
}

export type AdapterKind = 'cpu' | 'gpu';

/** 'cpu' for software adapters (Mesa lavapipe/llvmpipe, SwiftShader), else 'gpu'. */
export function adapterKind(
  report: Pick<AdapterReport, 'vendor' | 'architecture' | 'device' | 'description'>,
): AdapterKind {
  const id = [report.vendor, report.architecture, report.device, report.description].join(' ');
  return /llvmpipe|lavapipe|swiftshader/i.test(id) ? 'cpu' : 'gpu';
}

/** The portable paths: packed 16-bit data unpacked to f32, workgroup-memory reduction trees. */
export const PORTABLE_SHADERS: ShaderFeatures = { f16: false, subgroups: false };

export function shaderFeatures(report: AdapterReport): ShaderFeatures {
  return {
    f16: report.features['shader-f16'],
    subgroups: report.features.subgroups,
    adapterKind: adapterKind(report),
  };
}

export class WebGPUUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WebGPUUnavailableError';
  }
}

/** What to tell a person whose browser has no WebGPU. */
export const NO_WEBGPU_HELP =
  'WebGPU is not available. Use a current Chrome or Edge (version 113 or newer) on a machine with a GPU, ' +
  'over https or http://localhost. On Linux, start Chrome with --enable-unsafe-webgpu --enable-features=Vulkan. ' +
  'Check chrome://gpu: "WebGPU: Hardware accelerated" must be listed.';

/** Picks the features to request: the optional ones the adapter offers, minus any the caller disabled. */
export function chooseFeatures(
  offered: ReadonlySet<string>,
  disabled: readonly string[] = [],
): GPUFeatureName[] {
  return OPTIONAL_FEATURES.filter((f) => offered.has(f) && !disabled.includes(f)) as GPUFeatureName[];
}

/** The adapter's own maxima for the limits we care about (never below the defaults). */
export function chooseLimits(adapterLimits: GPUSupportedLimits): Record<RequestedLimit, number> {
  const out = {} as Record<RequestedLimit, number>;
  for (const name of REQUESTED_LIMITS) out[name] = adapterLimits[name];
  return out;
}

export async function acquireDevice(gpu: GPU | undefined, opts: DeviceOptions = {}): Promise<GpuContext> {
  if (!gpu) throw new WebGPUUnavailableError(NO_WEBGPU_HELP);
  const featureLevel = opts.compatibility ? 'compatibility' : 'core';
  const adapter = await gpu.requestAdapter({
    powerPreference: opts.powerPreference ?? 'high-performance',
    ...(opts.compatibility ? { featureLevel: 'compatibility' } : {}),
  } as GPURequestAdapterOptions);
  if (!adapter) {
    throw new WebGPUUnavailableError(`No WebGPU adapter was found (${featureLevel} mode). ${NO_WEBGPU_HELP}`);
  }
  const requiredFeatures = chooseFeatures(adapter.features as ReadonlySet<string>, opts.disableFeatures);
  const requiredLimits = chooseLimits(adapter.limits);
  const device = await adapter.requestDevice({ requiredFeatures, requiredLimits });
  const info = adapter.info;
  const report: AdapterReport = {
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    isFallbackAdapter: Boolean((info as { isFallbackAdapter?: boolean }).isFallbackAdapter),
    featureLevel: device.features.has('core-features-and-limits') ? 'core' : featureLevel,
    features: Object.fromEntries(OPTIONAL_FEATURES.map((f) => [f, device.features.has(f)])) as Record<
      OptionalFeature,
      boolean
    >,
    limits: chooseLimits(device.limits),
    subgroupMatrix: subgroupMatrixReport({ features: adapter.features as ReadonlySet<string>, info }),
  };
  return { device, adapter, report };
}
