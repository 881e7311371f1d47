import { describe, expect, it } from 'vitest';
import { blobSource, bytesSource, responseSource } from '../../../src/model/byte-source.ts';
import { decodeFloats, encodeFloats } from '../../../src/model/dtype.ts';
import { MAX_HEADER_BYTES, openSafetensors } from '../../../src/model/safetensors-read.ts';
import { encodeSafetensors, planSafetensors } from '../../../src/model/safetensors-write.ts';

/** A file with a hand-written header (for malformed cases) followed by `dataBytes` zero bytes. */
function rawFile(header: unknown, dataBytes: number, headerLenOverride?: bigint): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.byteLength + dataBytes);
  new DataView(out.buffer).setBigUint64(0, headerLenOverride ?? BigInt(json.byteLength), true);
  out.set(json, 8);
  return out;
}

const open = (bytes: Uint8Array) => openSafetensors(bytesSource(bytes), 'test.safetensors');

describe('safetensors round trip', () => {
  it('writes and reads F32, F16, BF16, I32 and I64 tensors', async () => {
    const values = new Float32Array([1.5, -2.25, 3.0e-3, 65504, 0, -0.1]);
    const i32 = new Int32Array([1, -2, 2147483647]);
    const i64 = new BigInt64Array([1n, -(2n ** 40n)]);
    const file = await encodeSafetensors(
      [
        { name: 'a.f32', dtype: 'F32', shape: [2, 3], data: encodeFloats(values, 'F32') },
        { name: 'b.f16', dtype: 'F16', shape: [6], data: encodeFloats(values, 'F16') },
        { name: 'c.bf16', dtype: 'BF16', shape: [3, 2], data: encodeFloats(values, 'BF16') },
        { name: 'd.i32', dtype: 'I32', shape: [3], data: new Uint8Array(i32.buffer) },
        { name: 'e.i64', dtype: 'I64', shape: [2], data: new Uint8Array(i64.buffer) },
        { name: 'f.empty', dtype: 'F32', shape: [0, 4], data: new Uint8Array() },
      ],
      { note: 'hello' },
    );
    // Read through a Blob too: the browser path.
    for (const st of [
      await open(file),
      await openSafetensors(blobSource(new Blob([file as Uint8Array<ArrayBuffer>])), 'blob'),
      await openSafetensors(await responseSource(new Response(file as Uint8Array<ArrayBuffer>)), 'response'),
    ]) {
      expect(st.metadata).toEqual({ format: 'pt', note: 'hello' });
      expect(st.tensors.map((t) => t.name)).toEqual([
        'a.f32',
        'b.f16',
        'c.bf16',
        'd.i32',
        'e.i64',
        'f.empty',
      ]);
      expect(st.tensor('c.bf16').shape).toEqual([3, 2]);
      expect(decodeFloats(await st.read('a.f32'), 'F32')).toEqual(values);
      const f16 = decodeFloats(await st.read('b.f16'), 'F16');
      const bf16 = decodeFloats(await st.read('c.bf16'), 'BF16');
      for (let i = 0; i < values.length; i++) {
        expect(Math.abs(f16[i] - values[i])).toBeLessThanOrEqual(Math.abs(values[i]) * 2 ** -11);
        expect(Math.abs(bf16[i] - values[i])).toBeLessThanOrEqual(Math.abs(values[i]) * 2 ** -8);
      }
      // bf16 rounding is round-to-nearest-even, not truncation: 65504 = 0x477fe000 rounds up to 65536.
      expect(bf16[3]).toBe(65536);
      const readI32 = await st.read('d.i32');
      expect(new Int32Array(readI32.slice().buffer)).toEqual(i32);
      expect(new BigInt64Array((await st.read('e.i64')).slice().buffer)).toEqual(i64);
      expect((await st.read('f.empty')).byteLength).toBe(0);
    }
  });

  it('pads the header to 8 bytes so data is aligned, and streams a tensor in chunks', async () => {
    const data = new Uint8Array(1000).map((_, i) => i & 0xff);
    const file = await encodeSafetensors([{ name: 'x', dtype: 'F16', shape: [500], data }]);
    const st = await open(file);
    expect(st.tensors[0].offset % 8).toBe(0);
    const chunks: Uint8Array[] = [];
    for await (const c of st.stream('x', 64)) chunks.push(c.slice());
    expect(chunks.length).toBe(16);
    expect(Uint8Array.from(chunks.flatMap((c) => [...c]))).toEqual(data);
  });

  it('refuses duplicate names when planning', () => {
    expect(() =>
      planSafetensors([
        { name: 'x', dtype: 'F32', shape: [1] },
        { name: 'x', dtype: 'F32', shape: [1] },
      ]),
    ).toThrow(/listed twice/);
  });
});

describe('malformed safetensors files give clear errors', () => {
  const good = { w: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] } };

  it('accepts the well-formed baseline', async () => {
    expect((await open(rawFile(good, 16))).tensors.length).toBe(1);
  });

  const cases: [string, () => Uint8Array, RegExp][] = [
    ['too short', () => new Uint8Array(5), /test\.safetensors: file is 5 bytes/],
    ['truncated data', () => rawFile(good, 10), /tensor "w".*past the data section.*truncated/],
    ['truncated header', () => rawFile(good, 0, 10_000n), /header length 10000 is past the end/],
    [
      'absurd header length',
      () => rawFile(good, 16, 2n ** 62n),
      new RegExp(`exceeds the ${MAX_HEADER_BYTES}-byte cap`),
    ],
    ['non-JSON header', () => rawFile('{"w": {dtype', 16), /header is not valid JSON/],
    ['JSON array header', () => rawFile('[1,2]', 16), /header JSON is not an object/],
    [
      'unknown dtype',
      () => rawFile({ w: { dtype: 'F8_E4M3', shape: [2, 2], data_offsets: [0, 4] } }, 16),
      /tensor "w": unknown dtype "F8_E4M3"/,
    ],
    [
      'byte length ≠ shape × dtype',
      () => rawFile({ w: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 16] } }, 16),
      /tensor "w": 16 bytes of data but F32\[2,3\] needs 24/,
    ],
    [
      'negative dim',
      () => rawFile({ w: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, 16),
      /tensor "w": shape must be/,
    ],
    [
      'reversed offsets',
      () => rawFile({ w: { dtype: 'F32', shape: [1], data_offsets: [8, 4] } }, 16),
      /tensor "w": data_offsets must be/,
    ],
    [
      'overlapping tensors',
      () =>
        rawFile(
          {
            a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
            b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
          },
          16,
        ),
      /tensors "a" and "b" overlap/,
    ],
    [
      'bad metadata',
      () => rawFile({ __metadata__: { n: 1 }, ...good }, 16),
      /__metadata__ must map strings to strings/,
    ],
    [
      'invalid UTF-8 header',
      () => rawFile('{"\xff"}', 16).map((b, i) => (i === 10 ? 0xff : b)),
      /header is not valid JSON/,
    ],
  ];
  for (const [what, make, message] of cases) {
    it(what, async () => {
      await expect(open(make())).rejects.toThrow(message);
    });
  }

  it('names the file and tensor when a tensor is missing', async () => {
    const st = await open(rawFile(good, 16));
    await expect(st.read('nope')).rejects.toThrow('test.safetensors: no tensor named "nope"');
  });
});
