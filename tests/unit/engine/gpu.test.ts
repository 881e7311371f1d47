import { describe, expect, it } from 'vitest';
import {
  acquireDevice,
  adapterKind,
  chooseFeatures,
  chooseLimits,
  REQUESTED_LIMITS,
  shaderFeatures,
  SUBGROUP_MATRIX_FEATURE,
  subgroupMatrixReport,
  WebGPUUnavailableError,
  type AdapterReport,
} from '../../../src/engine/gpu.ts';
import { weightArithmetic } from '../../../src/engine/kernels/weights-wgsl.ts';

describe('device helper configuration', () => {
  it('requests only the optional features the adapter offers', () => {
    const offered = new Set(['shader-f16', 'texture-compression-bc', 'timestamp-query']);
    expect(chooseFeatures(offered)).toEqual(['shader-f16', 'timestamp-query']);
    expect(chooseFeatures(new Set())).toEqual([]);
  });

  it('leaves off features the caller disables (to cover the no-f16 path)', () => {
    const offered = new Set(['shader-f16', 'subgroups', 'timestamp-query']);
    expect(chooseFeatures(offered, ['shader-f16'])).toEqual(['subgroups', 'timestamp-query']);
  });

  it('reports subgroup matrices with their shapes where offered; the tiled matmul runs either way', () => {
    const config = { componentType: 'f16', resultComponentType: 'f32', M: 8, N: 8, K: 8 };
    const offered = subgroupMatrixReport({
      features: new Set(['shader-f16', SUBGROUP_MATRIX_FEATURE]),
      info: { vendor: 'nvidia', subgroupMatrixConfigs: [config, { ...config, componentType: 'i8', K: 32 }] },
    });
    expect(offered).toEqual({
      offered: true,
      configs: [config, { ...config, componentType: 'i8', K: 32 }],
      matmulPath: 'tiled',
    });
    // Configs without the feature (or the feature without configs) are not a path to take.
    expect(subgroupMatrixReport({ features: new Set(), info: { subgroupMatrixConfigs: [config] } })).toEqual({
      offered: false,
      configs: [],
      matmulPath: 'tiled',
    });
    expect(subgroupMatrixReport({ features: new Set([SUBGROUP_MATRIX_FEATURE]), info: {} }).configs).toEqual(
      [],
    );
  });

  it('derives the shader paths from the granted features; only f16 weights multiply in f16', () => {
    const report = (f16: boolean, subgroups: boolean) =>
      ({ features: { 'shader-f16': f16, subgroups, 'timestamp-query': false } }) as AdapterReport;
    expect(shaderFeatures(report(true, false))).toEqual({ f16: true, subgroups: false, adapterKind: 'gpu' });
    expect(shaderFeatures(report(false, true))).toEqual({ f16: false, subgroups: true, adapterKind: 'gpu' });
    const both = shaderFeatures(report(true, true));
    expect(weightArithmetic('f16', both)).toBe('f16');
    expect(weightArithmetic('bf16', both)).toBe('f32');
    expect(weightArithmetic('f32', both)).toBe('f32');
    expect(weightArithmetic('f16', shaderFeatures(report(false, true)))).toBe('f32');
  });

  it('tells software adapters (tile tables for CPU SIMD lanes) from GPUs', () => {
    const id = (description: string, vendor = '', architecture = '') => ({
      vendor,
      architecture,
      device: '',
      description,
    });
    expect(adapterKind(id('llvmpipe: Mesa 25.0.7-2~bpo12+1 (LLVM 15.0.6)'))).toBe('cpu');
    expect(adapterKind(id('SwiftShader Device (Subzero)', 'google'))).toBe('cpu');
    expect(adapterKind(id('NVIDIA H100 80GB HBM3', 'nvidia', 'hopper'))).toBe('gpu');
    expect(adapterKind(id(''))).toBe('gpu');
  });

  it("asks for the adapter's own limits", () => {
    const adapterLimits = Object.fromEntries(REQUESTED_LIMITS.map((n, i) => [n, 1000 + i]));
    const limits = chooseLimits(adapterLimits as unknown as GPUSupportedLimits);
    for (const [i, name] of REQUESTED_LIMITS.entries()) expect(limits[name]).toBe(1000 + i);
  });

  it('says what to do when WebGPU is missing', async () => {
    await expect(acquireDevice(undefined)).rejects.toThrow(WebGPUUnavailableError);
    await expect(acquireDevice(undefined)).rejects.toThrow(/Chrome or Edge/);
  });

  it('says what to do when no adapter is found', async () => {
    const gpu = { requestAdapter: async () => null } as unknown as GPU;
    await expect(acquireDevice(gpu, { compatibility: true })).rejects.toThrow(
      /No WebGPU adapter.*compatibility/,
    );
  });

  it('requests compatibility mode when asked and reports the granted features and limits', async () => {
    let requested: GPURequestAdapterOptions | undefined;
    let deviceDesc: GPUDeviceDescriptor | undefined;
    const limits = Object.fromEntries(REQUESTED_LIMITS.map((n) => [n, 7]));
    const device = { features: new Set(['subgroups']), limits } as unknown as GPUDevice;
    const adapter = {
      features: new Set(['subgroups', 'shader-f16']),
      limits,
      info: { vendor: 'v', architecture: 'a', device: 'd', description: 'desc' },
      requestDevice: async (desc: GPUDeviceDescriptor) => ((deviceDesc = desc), device),
    };
    const gpu = {
      requestAdapter: async (o: GPURequestAdapterOptions) => ((requested = o), adapter),
    } as unknown as GPU;
    const ctx = await acquireDevice(gpu, { compatibility: true, disableFeatures: ['shader-f16'] });
    expect((requested as { featureLevel?: string }).featureLevel).toBe('compatibility');
    expect(deviceDesc?.requiredFeatures).toEqual(['subgroups']);
    expect(ctx.report.featureLevel).toBe('compatibility');
    expect(ctx.report.features).toEqual({ 'shader-f16': false, subgroups: true, 'timestamp-query': false });
    expect(ctx.report.limits.maxBufferSize).toBe(7);
  });
});
