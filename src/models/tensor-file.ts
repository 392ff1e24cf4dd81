/**
 * Named tensors in one file: u32 header length, JSON [{name, length, dtype?, cols?}], then the
 * data, each tensor padded to 4 bytes. Written atomically; always read back as Float32.
 * Stored as float32 by default; a shipped model can keep a tensor as float16, or as int8 rows
 * with one float32 scale per row (`q8`: for tables of vectors that are normalised before use,
 * where a per-row scale loses nothing that matters), which is what keeps the pack small.
 */
import { readFile } from 'node:fs/promises';
import { createError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { dequantizeInt8, quantizeInt8 } from '../util/int8.js';
import { fromHalf, toHalf } from '../util/float16.js';

/** Named weight tensors: what a tensor file holds, and a model's (or a training run's) parameters. */
export type Params = Map<string, Float32Array>;

export type Storage = 'f32' | 'f16' | { q8: number };

interface Entry {
  name: string;
  length: number;
  dtype?: 'f16' | 'q8';
  /** q8: the row length */
  cols?: number;
}

const pad4 = (n: number) => (4 - (n % 4)) % 4;

function quantizeRows(t: Float32Array, cols: number): { scales: Float32Array; q: Int8Array } {
  const { codes, scales } = quantizeInt8(t, cols);
  return { scales, q: codes };
}

const dequantizeRows = (scales: Float32Array, q: Int8Array, cols: number): Float32Array => dequantizeInt8(q, scales, cols);

/** The values a tensor saved with `storage` is read back as. */
export function asStored(t: Float32Array, storage: Storage): Float32Array {
  if (storage === 'f32') return t;
  if (storage === 'f16') return fromHalf(toHalf(t));
  const { scales, q } = quantizeRows(t, storage.q8);
  return dequantizeRows(scales, q, storage.q8);
}

export async function saveTensors(path: string, tensors: Params, storage: (name: string) => Storage = () => 'f32'): Promise<void> {
  const entries: Entry[] = [];
  const data: Uint8Array[] = [];
  const bytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  for (const [name, t] of tensors) {
    const s = storage(name);
    let parts: Uint8Array[];
    if (s === 'f32') {
      entries.push({ name, length: t.length });
      parts = [bytes(t)];
    } else if (s === 'f16') {
      entries.push({ name, length: t.length, dtype: 'f16' });
      parts = [bytes(toHalf(t))];
    } else {
      const { scales, q } = quantizeRows(t, s.q8);
      entries.push({ name, length: t.length, dtype: 'q8', cols: s.q8 });
      parts = [bytes(scales), bytes(q)];
    }
    const size = parts.reduce((n, p) => n + p.length, 0);
    data.push(...parts, new Uint8Array(pad4(size)));
  }
  const header = Buffer.from(JSON.stringify(entries));
  const pad = pad4(4 + header.length);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(header.length + pad);
  await writeFileAtomic(path, [len, header, Buffer.alloc(pad, 0x20), ...data]);
}

export async function loadTensors(path: string): Promise<Params> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch {
    throw createError('FILE_NOT_FOUND', path);
  }
  const headerLength = buf.readUInt32LE(0);
  const entries = JSON.parse(buf.subarray(4, 4 + headerLength).toString('utf8')) as Entry[];
  // copies, so every typed array is aligned whatever the Buffer's offset in its pool
  const take = (at: number, n: number) => {
    if (at + n > buf.length) throw createError('INDEX_CORRUPT', path, 'a tensor runs past the end');
    return buf.buffer.slice(buf.byteOffset + at, buf.byteOffset + at + n);
  };
  const out: Params = new Map();
  let at = 4 + headerLength;
  for (const e of entries) {
    let size: number;
    if (e.dtype === 'f16') {
      size = 2 * e.length;
      out.set(e.name, fromHalf(new Uint16Array(take(at, size))));
    } else if (e.dtype === 'q8') {
      const rows = e.length / e.cols!;
      size = 4 * rows + e.length;
      out.set(e.name, dequantizeRows(new Float32Array(take(at, 4 * rows)), new Int8Array(take(at + 4 * rows, e.length)), e.cols!));
    } else {
      size = 4 * e.length;
      out.set(e.name, new Float32Array(take(at, size)));
    }
    at += size + pad4(size);
  }
  return out;
}
