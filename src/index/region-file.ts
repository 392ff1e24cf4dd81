/**
 * Stage-2 image sides stored beside an index (`<index>.stage2`): one fp16 block per image, as
 * the cross-encoder that made them lays it out, tagged with that cross-encoder's id so a
 * different one never reads them. Written atomically.
 *
 *   "DUOSTG2\0" | u32 version | u32 header bytes | header JSON {rerankerId, size, ids} | pad | u16 data
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { fromHalf, toHalf } from '../util/float16.js';

const MAGIC = Buffer.from('DUOSTG2\0', 'ascii');

export const regionPath = (indexPath: string) => `${indexPath}.stage2`;

export async function saveRegions(path: string, rerankerId: string, regions: Map<string, Float32Array>): Promise<void> {
  const ids = [...regions.keys()];
  const size = ids.length > 0 ? regions.get(ids[0]!)!.length : 0;
  const data = new Uint16Array(ids.length * size);
  ids.forEach((id, i) => {
    const r = regions.get(id)!;
    if (r.length !== size) throw createError('INDEX_DIM_MISMATCH', `stage-2 regions of ${id}`, size, r.length);
    data.set(toHalf(r), i * size);
  });
  const header = Buffer.from(JSON.stringify({ rerankerId, size, ids }));
  const prefix = Buffer.alloc(16);
  MAGIC.copy(prefix);
  prefix.writeUInt32LE(1, 8);
  prefix.writeUInt32LE(header.length, 12);
  const pad = Buffer.alloc((2 - ((16 + header.length) % 2)) % 2);
  await writeFileAtomic(path, [prefix, header, pad, new Uint8Array(data.buffer)]);
}

/** The stored regions, or an empty map when the file is absent or was made by another cross-encoder. */
export async function loadRegions(path: string, rerankerId: string): Promise<Map<string, Float32Array>> {
  if (!existsSync(path)) return new Map();
  const buf = await readFile(path);
  if (!buf.subarray(0, 8).equals(MAGIC)) throw createError('INDEX_CORRUPT', path, 'not a stage-2 region file');
  const len = buf.readUInt32LE(12);
  const header = JSON.parse(buf.subarray(16, 16 + len).toString('utf8')) as { rerankerId: string; size: number; ids: string[] };
  if (header.rerankerId !== rerankerId) return new Map();
  const start = 16 + len + ((2 - ((16 + len) % 2)) % 2);
  const expected = header.ids.length * header.size * 2;
  if (buf.length - start !== expected) throw createError('INDEX_CORRUPT', path, `expected ${expected} bytes of regions, found ${buf.length - start}`);
  const data = new Uint16Array(buf.buffer.slice(buf.byteOffset + start, buf.byteOffset + buf.length));
  return new Map(header.ids.map((id, i) => [id, fromHalf(data.subarray(i * header.size, (i + 1) * header.size))]));
}
