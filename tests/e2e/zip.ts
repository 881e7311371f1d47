// Reads the entries of a zip file (fflate: stored or deflated): enough to check that an export the app
// downloaded is a well-formed archive with the files it should contain.
import { unzipSync } from 'fflate';

export function readZip(buf: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const [name, data] of Object.entries(unzipSync(buf))) out.set(name, Buffer.from(data));
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
