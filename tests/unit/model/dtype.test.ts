import { describe, expect, it } from 'vitest';
import {
  bf16BitsToF32,
  bf16ToF32,
  decodeFloats,
  encodeFloats,
  f16BitsToF32,
  f16ToF32,
  f32ToBf16,
  f32ToBf16Bits,
  f32ToF16,
  f32ToF16Bits,
  parseFloatDType,
} from '../../../src/model/dtype.ts';

function f32FromBits(bits: number): number {
  return new Float32Array(new Uint32Array([bits]).buffer)[0];
}

describe('bf16', () => {
  it('rounds to nearest, ties to even', () => {
    // 1 + 2^-8 is exactly halfway between bf16 1.0 and 1.0078125: ties go to the even mantissa (1.0).
    expect(f32ToBf16Bits(1 + 2 ** -8)).toBe(0x3f80);
    // 1 + 3*2^-8 is halfway between 1.0078125 (odd) and 1.015625 (even): rounds up.
    expect(f32ToBf16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82);
    // Just above halfway rounds up.
    expect(f32ToBf16Bits(f32FromBits(0x3f808001))).toBe(0x3f81);
    expect(f32ToBf16Bits(f32FromBits(0x3f807fff))).toBe(0x3f80);
    expect(f32ToBf16Bits(-2.5)).toBe(0xc020);
  });

  it('keeps zeros, infinities and NaN', () => {
    expect(f32ToBf16Bits(0)).toBe(0);
    expect(f32ToBf16Bits(-0)).toBe(0x8000);
    expect(f32ToBf16Bits(Infinity)).toBe(0x7f80);
    expect(f32ToBf16Bits(-Infinity)).toBe(0xff80);
    expect(Number.isNaN(bf16BitsToF32(f32ToBf16Bits(NaN)))).toBe(true);
    // The largest finite f32 rounds up to infinity in bf16, as in PyTorch.
    expect(f32ToBf16Bits(f32FromBits(0x7f7fffff))).toBe(0x7f80);
  });

  it('array conversion matches the scalar one and round-trips bf16 values exactly', () => {
    const xs = new Float32Array([0.1, -3.14159, 1e-30, 65504, 1 + 2 ** -8, -7e20, 0.3333]);
    const half = f32ToBf16(xs);
    for (let i = 0; i < xs.length; i++) expect(half[i]).toBe(f32ToBf16Bits(xs[i]));
    const back = bf16ToF32(half);
    expect(f32ToBf16(back)).toEqual(half);
    for (let i = 0; i < xs.length; i++)
      expect(Math.abs(back[i] - xs[i])).toBeLessThanOrEqual(Math.abs(xs[i]) * 2 ** -8);
  });
});

describe('f16', () => {
  it('converts normals, subnormals, overflow with round-to-nearest-even', () => {
    expect(f32ToF16Bits(1)).toBe(0x3c00);
    expect(f32ToF16Bits(-2)).toBe(0xc000);
    expect(f32ToF16Bits(65504)).toBe(0x7bff);
    expect(f32ToF16Bits(65520)).toBe(0x7c00); // halfway to the next power: rounds to infinity
    expect(f32ToF16Bits(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(f32ToF16Bits(2 ** -25)).toBe(0x0000); // halfway to zero, tie to even
    expect(f32ToF16Bits(3 * 2 ** -25)).toBe(0x0002); // 1.5 ulp: tie to even (2)
    expect(f32ToF16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie to even
    expect(f32ToF16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(f32ToF16Bits(Infinity)).toBe(0x7c00);
    expect(Number.isNaN(f16BitsToF32(f32ToF16Bits(NaN)))).toBe(true);
    expect(f16BitsToF32(0x0001)).toBe(2 ** -24);
    expect(f16BitsToF32(0xfbff)).toBe(-65504);
  });

  it('every f16 value round-trips through f32', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const f = f16ToF32(all);
    const back = f32ToF16(f);
    const wrong: number[] = [];
    for (let i = 0; i < 65536; i++) {
      const isNaN = (i & 0x7c00) === 0x7c00 && (i & 0x3ff) !== 0;
      if (!isNaN && back[i] !== i) wrong.push(i);
    }
    expect(wrong).toEqual([]);
  });
});

describe('encode/decode floats', () => {
  it('round-trips each dtype', () => {
    const xs = new Float32Array([1, -0.5, 0.25, 1024, -3]);
    for (const dt of ['F32', 'F16', 'BF16'] as const) {
      const bytes = encodeFloats(xs, dt);
      expect(bytes.byteLength).toBe(xs.length * (dt === 'F32' ? 4 : 2));
      // Unaligned input must work too.
      const unaligned = new Uint8Array(bytes.byteLength + 1).subarray(1);
      unaligned.set(bytes);
      expect(decodeFloats(unaligned, dt)).toEqual(xs);
    }
  });

  it('parses CLI dtype names', () => {
    expect(parseFloatDType('bf16')).toBe('BF16');
    expect(() => parseFloatDType('int4')).toThrow(/unknown dtype "int4"/);
  });
});
