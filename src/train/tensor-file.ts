/** Named Float32 tensors in one file: u32 header length, JSON [{name, length}], then the data. Written atomically. */
import { readFile } from 'node:fs/promises';
import { createError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic-write.js';

export async function saveTensors(path: string, tensors: Map<string, Float32Array>): Promise<void> {
  const entries = [...tensors].map(([name, t]) => ({ name, length: t.length }));
  const header = Buffer.from(JSON.stringify(entries));
  const pad = (4 - ((4 + header.length) % 4)) % 4;
  const len = Buffer.alloc(4);
  len.writeUInt32LE(header.length + pad);
  const parts: Uint8Array[] = [len, header, Buffer.alloc(pad, 0x20)];
  for (const t of tensors.values()) parts.push(new Uint8Array(t.buffer, t.byteOffset, t.byteLength));
  await writeFileAtomic(path, parts);
}

export async function loadTensors(path: string): Promise<Map<string, Float32Array>> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch {
    throw createError('FILE_NOT_FOUND', path);
  }
  const headerLength = buf.readUInt32LE(0);
  const entries = JSON.parse(buf.subarray(4, 4 + headerLength).toString('utf8')) as { name: string; length: number }[];
  const all = new Float32Array(buf.buffer.slice(buf.byteOffset + 4 + headerLength, buf.byteOffset + buf.length));
  const out = new Map<string, Float32Array>();
  let at = 0;
  for (const e of entries) {
    if (at + e.length > all.length) throw createError('INDEX_CORRUPT', path, `tensor ${e.name} runs past the end`);
    out.set(e.name, all.slice(at, at + e.length));
    at += e.length;
  }
  return out;
}
