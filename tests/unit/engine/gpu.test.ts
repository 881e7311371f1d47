import { describe, expect, it } from 'vitest';
import {
  acquireDevice,
  chooseFeatures,
  chooseLimits,
  REQUESTED_LIMITS,
  WebGPUUnavailableError,
} from '../../../src/engine/gpu.ts';

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
