// Reads the entries of a zip file (stored or deflated, no zip64): enough to check that an export the
// app downloaded is a well-formed archive with the files it should contain.
import { inflateRawSync } from 'node:zlib';

const EOCD = 0x06054b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;

export function readZip(buf: Buffer): Map<string, Buffer> {
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 22 - 0xffff); i--) {
    if (buf.readUInt32LE(i) === EOCD) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error('not a zip file: no end-of-central-directory record');
  const count = buf.readUInt16LE(eocd + 10);
  let p = buf.readUInt32LE(eocd + 16);
  const out = new Map<string, Buffer>();
  for (let n = 0; n < count; n++) {
    if (buf.readUInt32LE(p) !== CENTRAL) throw new Error(`bad central directory entry at ${p}`);
    const method = buf.readUInt16LE(p + 10);
    const compressed = buf.readUInt32LE(p + 20);
    const size = buf.readUInt32LE(p + 24);
    const nameLen = buf.readUInt16LE(p + 28);
    const extraLen = buf.readUInt16LE(p + 30);
    const commentLen = buf.readUInt16LE(p + 32);
    const local = buf.readUInt32LE(p + 42);
    const name = buf.subarray(p + 46, p + 46 + nameLen).toString('utf8');
    p += 46 + nameLen + extraLen + commentLen;
    if (buf.readUInt32LE(local) !== LOCAL) throw new Error(`bad local header for ${name}`);
    const start = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
    const raw = buf.subarray(start, start + compressed);
    const data = method === 0 ? Buffer.from(raw) : method === 8 ? inflateRawSync(raw) : null;
    if (!data) throw new Error(`${name}: unsupported compression method ${method}`);
    if (data.length !== size) throw new Error(`${name}: ${data.length} bytes, expected ${size}`);
    out.set(name, data);
  }
  return out;
}

/** The JSON header of a safetensors file: tensor name → dtype, shape, offsets (throws when malformed). */
export function safetensorsHeader(
  buf: Buffer,
): Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }> {
  const len = Number(buf.readBigUInt64LE(0));
  if (8 + len > buf.length) throw new Error('safetensors header runs past the end of the file');
  const header = JSON.parse(buf.subarray(8, 8 + len).toString('utf8')) as Record<string, unknown>;
  delete header.__metadata__;
  const dataBytes = buf.length - 8 - len;
  for (const [name, t] of Object.entries(header) as [string, { data_offsets: [number, number] }][]) {
    if (t.data_offsets[1] > dataBytes) throw new Error(`${name}: data past the end of the file`);
  }
  return header as ReturnType<typeof safetensorsHeader>;
}
