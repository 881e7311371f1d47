import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Sha256, sha256Hex } from '../../../src/model/sha256.ts';

describe('incremental SHA-256', () => {
  it('matches FIPS 180-4 vectors', () => {
    expect(sha256Hex(new Uint8Array())).toBe(
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
    expect(sha256Hex(new TextEncoder().encode('abc'))).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
    expect(
      sha256Hex(new TextEncoder().encode('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq')),
    ).toBe('248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1');
  });

  it('matches node:crypto for every length around block boundaries, fed in odd pieces', () => {
    const data = new Uint8Array(300).map((_, i) => (i * 131 + 7) & 0xff);
    for (let n = 0; n <= data.length; n += 1) {
      const slice = data.subarray(0, n);
      const h = new Sha256();
      for (let pos = 0; pos < n; pos += 37) h.update(slice.subarray(pos, Math.min(n, pos + 37)));
      expect(h.length).toBe(n);
      expect(h.hexDigest()).toBe(createHash('sha256').update(slice).digest('hex'));
    }
  });

  it('equals sha256sum on a 5 MB file, whole and fed in uneven chunks', () => {
    // 5 MB of xorshift32 bytes from a fixed seed.
    const words = new Uint32Array((5 * 1024 * 1024) / 4);
    let s = 0x2545f491;
    for (let i = 0; i < words.length; i++) {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      words[i] = s >>> 0;
    }
    const data = new Uint8Array(words.buffer);
    const dir = mkdtempSync(join(tmpdir(), 'tabzero-sha256-'));
    try {
      const path = join(dir, 'data.bin');
      writeFileSync(path, data);
      const expected = execFileSync('sha256sum', [path], { encoding: 'utf8' }).split(' ')[0];
      expect(expected).toMatch(/^[0-9a-f]{64}$/);
      expect(sha256Hex(data)).toBe(expected);
      const h = new Sha256();
      for (let pos = 0, step = 1; pos < data.length; pos += step, step = 1 + ((step * 7 + 13) % 999_983))
        h.update(data.subarray(pos, pos + step));
      expect(h.length).toBe(data.length);
      expect(h.hexDigest()).toBe(expected);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses use after digest', () => {
    const h = new Sha256();
    h.digest();
    expect(() => h.update(new Uint8Array(1))).toThrow(/after digest/);
    expect(() => h.digest()).toThrow(/called twice/);
  });
});
