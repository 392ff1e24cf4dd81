/**
 * One segment of an index folder: a batch of changes appended at a checkpoint, never rewritten
 * (compaction replaces several segments by one). Applying a segment removes its `deleted` ids,
 * then inserts or replaces its rows.
 *
 *   NNNNNN.seg      "DUOSEG\0\0" | u32 version | u32 header bytes | header JSON | pad to 4 | f32 rows
 *   NNNNNN.stage2   "DUOSTG2\0" | u32 version | u32 header bytes | header JSON | pad to 2 | f16 rows
 *
 * The .seg header holds the ids, their metadata, the deletions and a SHA-256 over all of it;
 * the .stage2 file holds the cross-encoder's image side of each row in the same order, read
 * row by row at query time (positioned reads), never loaded whole.
 */
import { createHash } from 'node:crypto';
import { readSync } from 'node:fs';
import { open, readFile, type FileHandle } from 'node:fs/promises';
import { createError } from '../errors.js';
import { writeFileAtomic, writeFileAtomicStream } from '../util/atomic-write.js';
import { fromHalf, toHalf } from '../util/float16.js';
import type { Metadata } from './filter.js';

const SEG_MAGIC = Buffer.from('DUOSEG\0\0', 'ascii');
const STAGE2_MAGIC = Buffer.from('DUOSTG2\0', 'ascii');
const SEG_VERSION = 1;
const STAGE2_VERSION = 2;

export const segmentName = (n: number) => String(n).padStart(6, '0');

export interface SegmentItem {
  id: string;
  metadata: Metadata;
  /** the item's key in the HNSW graph (hnsw-index.ts), in indexes that have one */
  key?: number;
}

export interface SegmentData {
  dim: number;
  deleted: string[];
  items: SegmentItem[];
  /** rows × dim, row-major, L2-normalised */
  vectors: Float32Array;
}

function framed(magic: Buffer, version: number, header: unknown, align: number): Buffer[] {
  const json = Buffer.from(JSON.stringify(header));
  const prefix = Buffer.alloc(16);
  magic.copy(prefix);
  prefix.writeUInt32LE(version, 8);
  prefix.writeUInt32LE(json.length, 12);
  return [prefix, json, Buffer.alloc((align - ((16 + json.length) % align)) % align)];
}

/** Checks a file's magic and version and returns its JSON header and where the rows start (also read by migrate-v1). */
export function readFrame(buf: Buffer, magic: Buffer, version: number, align: number, path: string): { header: unknown; start: number } {
  if (buf.length < 16 || !buf.subarray(0, 8).equals(magic)) throw createError('INDEX_CORRUPT', path, 'not a duo index segment');
  const v = buf.readUInt32LE(8);
  if (v !== version) throw createError('INDEX_FORMAT', path, `segment version ${v}, this build reads ${version}`);
  const len = buf.readUInt32LE(12);
  if (16 + len > buf.length) throw createError('INDEX_CORRUPT', path, 'truncated header');
  let header: unknown;
  try {
    header = JSON.parse(buf.subarray(16, 16 + len).toString('utf8'));
  } catch {
    throw createError('INDEX_CORRUPT', path, 'header is not valid JSON');
  }
  return { header, start: 16 + len + ((align - ((16 + len) % align)) % align) };
}

const checksumOf = (rows: Uint8Array, items: SegmentData['items'], deleted: string[]) =>
  createHash('sha256').update(rows).update(JSON.stringify({ items, deleted })).digest('hex');

export async function writeSegment(path: string, seg: SegmentData): Promise<string> {
  const rows = new Uint8Array(seg.vectors.buffer, seg.vectors.byteOffset, seg.vectors.byteLength);
  const checksum = checksumOf(rows, seg.items, seg.deleted);
  const header = { dim: seg.dim, count: seg.items.length, deleted: seg.deleted, items: seg.items, checksum };
  await writeFileAtomic(path, [...framed(SEG_MAGIC, SEG_VERSION, header, 4), rows]);
  return checksum;
}

/** Reads and verifies a segment; `checksum` is what the manifest recorded for it. */
export async function readSegment(path: string, checksum: string): Promise<SegmentData> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw createError('INDEX_CORRUPT', path, 'segment file missing');
    throw error;
  }
  const { header, start } = readFrame(buf, SEG_MAGIC, SEG_VERSION, 4, path);
  const h = header as { dim: number; count: number; deleted: string[]; items: SegmentData['items']; checksum: string };
  const expected = h.count * h.dim * 4;
  if (buf.length - start !== expected) throw createError('INDEX_CORRUPT', path, `expected ${expected} bytes of vectors, found ${buf.length - start}`);
  const rows = buf.subarray(start);
  if (h.checksum !== checksum || checksumOf(rows, h.items, h.deleted) !== checksum) throw createError('INDEX_CORRUPT', path, 'checksum mismatch');
  // copy: a Buffer may be a view into a shared pool with no 4-byte alignment
  const vectors = new Float32Array(rows.byteLength / 4);
  new Uint8Array(vectors.buffer).set(rows);
  return { dim: h.dim, deleted: h.deleted, items: h.items, vectors };
}

/**
 * An open segment whose rows stay on disk (the HNSW store: the graph answers searches, and the
 * f32 rows are read only for get, re-scoring, a filtered exact scan and compaction). Opening
 * reads the header and checks the file's size; `verify` also streams the rows through the
 * checksum without keeping them.
 */
export class SegmentRows {
  private constructor(
    private readonly handle: FileHandle,
    private readonly path: string,
    private readonly start: number,
    readonly dim: number,
    readonly deleted: string[],
    readonly items: SegmentItem[],
  ) {}

  static async open(path: string, checksum: string, options: { verify?: boolean } = {}): Promise<SegmentRows> {
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw createError('INDEX_CORRUPT', path, 'segment file missing');
      throw error;
    }
    try {
      const { size } = await handle.stat();
      const head = Buffer.alloc(16);
      await handle.read(head, 0, 16, 0);
      const len = head.readUInt32LE(12);
      if (16 + len > size) throw createError('INDEX_CORRUPT', path, 'truncated header');
      const buf = Buffer.alloc(16 + len);
      await handle.read(buf, 0, 16 + len, 0);
      const { header, start } = readFrame(buf, SEG_MAGIC, SEG_VERSION, 4, path);
      const h = header as { dim: number; count: number; deleted: string[]; items: SegmentItem[]; checksum: string };
      const expected = start + h.count * h.dim * 4;
      if (size !== expected) throw createError('INDEX_CORRUPT', path, `expected ${expected} bytes, found ${size}`);
      if (h.checksum !== checksum) throw createError('INDEX_CORRUPT', path, 'checksum mismatch');
      if (options.verify) {
        const hash = createHash('sha256');
        const chunk = Buffer.alloc(1 << 22);
        for (let at = start; at < size; ) {
          const { bytesRead } = await handle.read(chunk, 0, Math.min(chunk.length, size - at), at);
          if (bytesRead === 0) throw createError('INDEX_CORRUPT', path, 'truncated rows');
          hash.update(chunk.subarray(0, bytesRead));
          at += bytesRead;
        }
        if (hash.update(JSON.stringify({ items: h.items, deleted: h.deleted })).digest('hex') !== checksum) throw createError('INDEX_CORRUPT', path, 'checksum mismatch');
      }
      return new SegmentRows(handle, path, start, h.dim, h.deleted, h.items);
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  /**
   * Copies `count` consecutive rows from `row` into `target` at float offset `at`. Synchronous:
   * a positioned read of rows the page cache usually holds costs about a microsecond, far less
   * than a promise round trip, and the callers read runs of rows, many at once.
   */
  readInto(row: number, count: number, target: Float32Array, at: number): void {
    const bytes = count * this.dim * 4;
    const view = new Uint8Array(target.buffer, target.byteOffset + at * 4, bytes);
    let done = 0;
    while (done < bytes) {
      const n = readSync(this.handle.fd, view, done, bytes - done, this.start + row * this.dim * 4 + done);
      if (n === 0) throw createError('INDEX_CORRUPT', this.path, 'truncated rows');
      done += n;
    }
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}

/** Writes stage-2 rows as fp16, streaming `rows` (each `size` floats) in order. */
export async function writeStage2(path: string, rerankerId: string, size: number, count: number, rows: AsyncIterable<Float32Array> | Iterable<Float32Array>): Promise<void> {
  await writeFileAtomicStream(path, async (write) => {
    for (const part of framed(STAGE2_MAGIC, STAGE2_VERSION, { rerankerId, size, count }, 2)) await write(part);
    let n = 0;
    for await (const r of rows) {
      if (r.length !== size) throw createError('INDEX_DIM_MISMATCH', `stage-2 regions of row ${n}`, size, r.length);
      const half = toHalf(r);
      await write(new Uint8Array(half.buffer, half.byteOffset, half.byteLength));
      n++;
    }
    if (n !== count) throw createError('INDEX_CORRUPT', path, `wrote ${n} stage-2 rows for ${count} items`);
  });
}

/** An open stage-2 file: rows are read on demand with positioned reads. */
export class Stage2Reader {
  private constructor(
    private readonly handle: FileHandle,
    private readonly start: number,
    readonly size: number,
    readonly count: number,
  ) {}

  static async open(path: string, rerankerId: string, size: number, count: number): Promise<Stage2Reader> {
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw createError('INDEX_CORRUPT', path, 'stage-2 file missing');
      throw error;
    }
    try {
      const head = Buffer.alloc(16);
      await handle.read(head, 0, 16, 0);
      const len = head.readUInt32LE(12);
      if (16 + len > (await handle.stat()).size) throw createError('INDEX_CORRUPT', path, 'truncated header');
      const buf = Buffer.alloc(16 + len);
      await handle.read(buf, 0, 16 + len, 0);
      const { header, start } = readFrame(buf, STAGE2_MAGIC, STAGE2_VERSION, 2, path);
      const h = header as { rerankerId: string; size: number; count: number };
      if (h.rerankerId !== rerankerId || h.size !== size || h.count !== count) {
        throw createError('INDEX_CORRUPT', path, `holds ${h.count}×${h.size} rows of ${h.rerankerId}, the manifest says ${count}×${size} of ${rerankerId}`);
      }
      const { size: bytes } = await handle.stat();
      if (bytes !== start + count * size * 2) throw createError('INDEX_CORRUPT', path, `expected ${start + count * size * 2} bytes, found ${bytes}`);
      return new Stage2Reader(handle, start, size, count);
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  async read(row: number): Promise<Float32Array> {
    const bytes = this.size * 2;
    const buf = new Uint16Array(this.size);
    await this.handle.read(new Uint8Array(buf.buffer), 0, bytes, this.start + row * bytes);
    return fromHalf(buf);
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}
