// Incremental SHA-256, for hashing a 988 MB download while it streams in (WebCrypto's digest() needs
// the whole input at once, and node:crypto does not exist in the browser). A thin wrapper over
// @noble/hashes (audited, plain JavaScript: synchronous, no WebAssembly, no eval), keeping the API
// the callers use. Browser-safe.

import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';

export class Sha256 {
  private readonly hash = sha256.create();
  private total = 0;
  private done = false;

  /** Bytes hashed so far. */
  get length(): number {
    return this.total;
  }

  update(data: Uint8Array): this {
    if (this.done) throw new Error('sha256: update after digest');
    this.hash.update(data);
    this.total += data.byteLength;
    return this;
  }

  digest(): Uint8Array {
    if (this.done) throw new Error('sha256: digest called twice');
    this.done = true;
    return this.hash.digest();
  }

  hexDigest(): string {
    return bytesToHex(this.digest());
  }
}

export function sha256Hex(data: Uint8Array): string {
  return bytesToHex(sha256(data));
}
