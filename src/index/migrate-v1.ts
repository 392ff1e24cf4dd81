/**
 * Converts a format-1 index (duo-search 0.1: one `.duo` file, and `<file>.stage2` beside it when
 * it kept a cross-encoder's image side) into an index folder, so the hours spent encoding a
 * collection are not spent again. The old files are read whole and verified; nothing is encoded.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { createError } from '../errors.js';
import { fromHalf } from '../util/float16.js';
import { ExactStore } from './exact-store.js';
import { readFrame } from './segment-file.js';
import type { Metadata } from './filter.js';
import type { StoreInfo } from './vector-store.js';

interface V1Header {
  formatVersion: number;
  items?: 'images' | 'captions';
  modelId: string;
  modelSpec: string;
  headSpec?: string;
  dim: number;
  count: number;
  root: string;
  checksum: string;
  entries: { id: string; size: number; mtimeMs: number; meta?: Metadata }[];
}


export interface MigrateOptions {
  /** where the cross-encoder of `<old>.stage2` is (format 1 did not record it); its id must match */
  reranker?: { id: string; spec: string };
}

export async function migrateV1(oldPath: string, newPath: string, o: MigrateOptions = {}): Promise<{ items: number; stage2: boolean }> {
  const buf = await readFile(oldPath).catch((error: NodeJS.ErrnoException) => {
    throw error.code === 'ENOENT' ? createError('FILE_NOT_FOUND', oldPath) : error;
  });
  const { header, start } = readFrame(buf, Buffer.from('DUOINDEX', 'latin1'), 1, 4, oldPath);
  const h = header as V1Header;
  if (h.formatVersion !== 1) throw createError('INDEX_FORMAT', oldPath, `format version ${h.formatVersion}, not 1`);
  const rows = buf.subarray(start);
  if (rows.length !== h.count * h.dim * 4) throw createError('INDEX_CORRUPT', oldPath, `expected ${h.count * h.dim * 4} bytes of vectors, found ${rows.length}`);
  if (createHash('sha256').update(rows).update(JSON.stringify(h.entries)).digest('hex') !== h.checksum) throw createError('INDEX_CORRUPT', oldPath, 'checksum mismatch');
  const vectors = new Float32Array(rows.length / 4);
  new Uint8Array(vectors.buffer).set(rows);

  let regions: Map<string, Float32Array> | undefined;
  let reranker: StoreInfo['reranker'];
  const stage2Path = `${oldPath}.stage2`;
  if (existsSync(stage2Path) && o.reranker) {
    const sbuf = await readFile(stage2Path);
    const s = readFrame(sbuf, Buffer.from('DUOSTG2\0', 'latin1'), 1, 2, stage2Path);
    const sh = s.header as { rerankerId: string; size: number; ids: string[] };
    if (sh.rerankerId !== o.reranker.id) throw createError('BAD_ARGUMENT', '--reranker', `${stage2Path} holds the image side of ${sh.rerankerId}, not ${o.reranker.id}`);
    if (sbuf.length - s.start !== sh.ids.length * sh.size * 2) throw createError('INDEX_CORRUPT', stage2Path, 'truncated');
    const data = new Uint16Array(sbuf.buffer.slice(sbuf.byteOffset + s.start, sbuf.byteOffset + sbuf.length));
    regions = new Map(sh.ids.map((id, i) => [id, fromHalf(data.subarray(i * sh.size, (i + 1) * sh.size))]));
    const missing = h.entries.find((e) => !regions!.has(e.id));
    if (missing) throw createError('INDEX_CORRUPT', stage2Path, `no stage-2 side for ${missing.id}`);
    reranker = { id: o.reranker.id, spec: o.reranker.spec, regionSize: sh.size };
  }
  const info: StoreInfo = { items: h.items ?? 'images', modelId: h.modelId, modelSpec: h.modelSpec, headSpec: h.headSpec, dim: h.dim, root: h.root, reranker };
  if (existsSync(newPath)) throw createError('BAD_ARGUMENT', '--index', `${newPath} exists: give a new path`);
  const store = await ExactStore.open(newPath, { write: true, create: info });
  let done = false;
  try {
    const images = info.items === 'images';
    for (let i = 0; i < h.entries.length; i += 4096) {
      await store.upsert(
        h.entries.slice(i, i + 4096).map((e, j) => ({
          id: e.id,
          vector: vectors.subarray((i + j) * h.dim, (i + j + 1) * h.dim),
          metadata: images ? { ...e.meta, bytes: e.size, mtimeMs: e.mtimeMs, modified: new Date(e.mtimeMs).toISOString() } : (e.meta ?? {}),
          regions: regions?.get(e.id),
        })),
      );
    }
    done = true;
  } finally {
    await store.close();
    // a migration that failed part-way leaves nothing behind, so it can simply be run again
    if (!done) await rm(newPath, { recursive: true, force: true });
  }
  return { items: h.entries.length, stage2: regions !== undefined };
}
