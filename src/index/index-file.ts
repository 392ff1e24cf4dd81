/**
 * The on-disk index: one file, written atomically.
 *
 *   "DUOINDEX" | u32 format version | u32 header bytes | header JSON | pad to 4 | f32 rows
 *
 * The header carries the model id and dimension (an index never mixes models), the row
 * count, a SHA-256 over the rows and the entries, and one entry per row: the id (the path
 * relative to the indexed root) with the size and mtime used to skip unchanged files.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { ExactIndex } from './exact-index.js';

const MAGIC = Buffer.from('DUOINDEX', 'ascii');
export const FORMAT_VERSION = 1;

export interface IndexEntry {
  id: string;
  size: number;
  mtimeMs: number;
  /** anything the caller stores with an item (metadata filters read it) */
  meta?: Record<string, string | number | boolean>;
}

export interface IndexHeader {
  formatVersion: number;
  /** what the rows are: image files under `root` (the default) or a caption collection, each entry's text in meta.text */
  items?: 'images' | 'captions';
  modelId: string;
  /** what the index was built with (a hub id or a directory), so search can load the same model */
  modelSpec: string;
  /** the projection-head folder applied on top of the model, if any */
  headSpec?: string;
  dim: number;
  count: number;
  normalized: boolean;
  /** absolute directory the ids are relative to */
  root: string;
  checksum: string;
  createdAt: string;
  updatedAt: string;
  entries: IndexEntry[];
}

export interface SavedIndex {
  header: IndexHeader;
  store: ExactIndex;
}

function checksum(rows: Uint8Array, entries: IndexEntry[]): string {
  return createHash('sha256').update(rows).update(JSON.stringify(entries)).digest('hex');
}

export async function saveIndex(path: string, saved: Omit<SavedIndex, 'header'> & { header: Omit<IndexHeader, 'checksum' | 'count' | 'formatVersion'> }): Promise<void> {
  const { store } = saved;
  const ids = store.ids();
  const byId = new Map(saved.header.entries.map((e) => [e.id, e]));
  const entries = ids.map((id) => byId.get(id) ?? { id, size: 0, mtimeMs: 0 });
  const m = store.matrix();
  const rows = new Uint8Array(m.buffer, m.byteOffset, m.byteLength);
  const header: IndexHeader = {
    ...saved.header,
    formatVersion: FORMAT_VERSION,
    count: ids.length,
    dim: store.dim,
    entries,
    checksum: checksum(rows, entries),
  };
  const json = Buffer.from(JSON.stringify(header));
  const pad = (4 - ((MAGIC.length + 8 + json.length) % 4)) % 4;
  const prefix = Buffer.alloc(MAGIC.length + 8);
  MAGIC.copy(prefix);
  prefix.writeUInt32LE(FORMAT_VERSION, 8);
  prefix.writeUInt32LE(json.length, 12);
  await writeFileAtomic(path, [prefix, json, Buffer.alloc(pad), rows]);
}

export async function loadIndex(path: string, expect: { modelId?: string } = {}): Promise<SavedIndex> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw createError('FILE_NOT_FOUND', path);
    throw error;
  }
  if (buf.length < 16 || !buf.subarray(0, 8).equals(MAGIC)) throw createError('INDEX_CORRUPT', path, 'not a duo index file');
  const version = buf.readUInt32LE(8);
  if (version !== FORMAT_VERSION) throw createError('INDEX_CORRUPT', path, `format version ${version}, this build reads ${FORMAT_VERSION}`);
  const headerLength = buf.readUInt32LE(12);
  if (16 + headerLength > buf.length) throw createError('INDEX_CORRUPT', path, 'truncated header');
  let header: IndexHeader;
  try {
    header = JSON.parse(buf.subarray(16, 16 + headerLength).toString('utf8')) as IndexHeader;
  } catch {
    throw createError('INDEX_CORRUPT', path, 'header is not valid JSON');
  }
  const start = 16 + headerLength + ((4 - ((16 + headerLength) % 4)) % 4);
  const expectedBytes = header.count * header.dim * 4;
  if (buf.length - start !== expectedBytes) {
    throw createError('INDEX_CORRUPT', path, `expected ${expectedBytes} bytes of vectors, found ${buf.length - start}`);
  }
  const rows = buf.subarray(start);
  if (checksum(rows, header.entries) !== header.checksum) throw createError('INDEX_CORRUPT', path, 'checksum mismatch');
  if (expect.modelId !== undefined && expect.modelId !== header.modelId) {
    throw createError('INDEX_MODEL_MISMATCH', path, header.modelId, expect.modelId);
  }
  // copy: the Buffer may be a view into a shared pool with no 4-byte alignment guarantee
  const matrix = new Float32Array(rows.byteLength / 4);
  new Uint8Array(matrix.buffer).set(rows);
  const store = ExactIndex.fromRows(header.dim, header.entries.map((e) => e.id), matrix, header.normalized);
  return { header, store };
}
