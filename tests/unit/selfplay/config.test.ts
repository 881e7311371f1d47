// src/config.ts: presets, validation messages, --set parsing.
import { describe, expect, it } from 'vitest';
import {
  activeDeviations,
  CONFIG_SCHEMA,
  defaultConfig,
  parseSetFlag,
  PRESET_NAMES,
  resolveConfig,
} from '../../../src/config.ts';

describe('run config', () => {
  it('every knob has a description and a default inside its range', () => {
    for (const [key, knob] of Object.entries(CONFIG_SCHEMA)) {
      expect(knob.description.length, key).toBeGreaterThan(5);
      if (knob.kind === 'int' || knob.kind === 'float') {
        expect(knob.default, key).toBeGreaterThanOrEqual(knob.min);
        expect(knob.default, key).toBeLessThanOrEqual(knob.max);
      }
      if (knob.kind === 'enum') expect(knob.values, key).toContain(knob.default);
    }
  });

  it('resolves every preset; browser equals the defaults', () => {
    for (const name of PRESET_NAMES) expect(() => resolveConfig(name)).not.toThrow();
    expect(resolveConfig('browser')).toEqual(defaultConfig());
    expect(resolveConfig('smoke')).toMatchObject({
      batchPerGroup: 2,
      nEst: 2,
      refs: 2,
      inductionInputs: 4,
      seedFactor: 2,
      maxProposerTokens: 24,
      maxSolverTokens: 24,
      seedFallback: 'templates',
      maxSeedRounds: 1,
      entropyCoef: 0,
      evalLimit: 20,
      evalMode: 'raw',
      evalMaxNewRaw: 8,
    });
    expect(resolveConfig('azr-parity')).toMatchObject({
      batchPerGroup: 64,
      nEst: 8,
      refs: 6,
      inductionInputs: 10,
      lr: 1e-6,
    });
    expect(resolveConfig('journal-grpo')).toMatchObject({
      mode: 'grpo',
      grpoGroupSize: 16,
      temperature: 0.7,
      klBeta: 0.1,
      entropyCoef: 0,
      lr: 5e-6,
      grpoPromptFormat: 'raw',
      maxSolverTokens: 16,
    });
  });

  it('errors name the key, the bad value and the allowed range', () => {
    expect(() => resolveConfig('browser', { nEst: 1 })).toThrow(
      "config 'nEst': 1 is not allowed; expected an integer in [2, 64]",
    );
    expect(() => resolveConfig('browser', { advNorm: 'tokens' as never })).toThrow(/one of sequence, token/);
    expect(() => resolveConfig('browser', { bogus: 1 } as never)).toThrow("unknown config key 'bogus'");
    expect(() => resolveConfig('nope')).toThrow(/unknown preset 'nope'/);
    expect(() => resolveConfig('browser', { inductionInputs: 5 })).toThrow(/must be even/);
    expect(() => resolveConfig('browser', { maxBuffer: 16, batchPerGroup: 8 })).toThrow(/seed set B·S = 32/);
    expect(() => resolveConfig('browser', { loraTargets: ['q_proj', 'qq'] as never })).toThrow(/loraTargets/);
  });

  it('parses --set key=value by the knob kind', () => {
    expect(parseSetFlag('batchPerGroup=16')).toEqual({ batchPerGroup: 16 });
    expect(parseSetFlag('lr=3e-5')).toEqual({ lr: 3e-5 });
    expect(parseSetFlag('dedupBuffer=false')).toEqual({ dedupBuffer: false });
    expect(parseSetFlag('baselines=2')).toEqual({ baselines: 2 });
    expect(parseSetFlag('loraTargets=q_proj, v_proj')).toEqual({ loraTargets: ['q_proj', 'v_proj'] });
    expect(() => parseSetFlag('batchPerGroup=1.5')).toThrow(/batchPerGroup.*1.5.*integer in \[1, 512\]/);
    expect(() => parseSetFlag('baselines=3')).toThrow(/one of 6, 2, 1/);
    expect(() => parseSetFlag('novalue')).toThrow(/key=value/);
  });

  it('lists the DEVIATIONs a config turns on', () => {
    expect(activeDeviations(resolveConfig('browser')).sort()).toEqual(
      [
        'bufferEviction',
        'dedupBuffer',
        'distinctInductionInputs',
        'exampleCopyCheck',
        'hintLeakCheck',
        'nonconstantProgram',
      ].sort(),
    );
    expect(activeDeviations(resolveConfig('azr-parity'))).toEqual([]);
    expect(activeDeviations(resolveConfig('smoke'))).toContain('seedFallback');
    expect(activeDeviations(resolveConfig('azr-parity', { proposerPrompts: 'raw' }))).toEqual([
      'proposerPrompts',
    ]);
    // The journal's experiment variants count too, each when it is on.
    const variants = {
      diversityCoef: 0.5,
      oversample: true,
      baselineTiers: true,
      learnabilityReward: 'binary',
      separateAdapters: true,
    } as const;
    expect(activeDeviations(resolveConfig('azr-parity', { ...variants, fineTune: 'lora' })).sort()).toEqual(
      Object.keys(variants).sort(),
    );
  });

  it('issue 10 variants are off by default and validated', () => {
    const c = resolveConfig('browser');
    expect(c).toMatchObject({
      diversityCoef: 0,
      oversample: false,
      oversampleFactor: 2,
      baselineTiers: false,
      learnabilityReward: 'inverse',
      proposerPrompts: 'chat',
      separateAdapters: false,
    });
    expect(() => resolveConfig('browser', { tierHardBelow: 0.8, tierEasyAbove: 0.5 })).toThrow(
      /tierHardBelow/,
    );
    expect(parseSetFlag('learnabilityReward=improvement')).toEqual({ learnabilityReward: 'improvement' });
    expect(() => parseSetFlag('oversampleFactor=1')).toThrow(/\[2, 16\]/);
  });
});
