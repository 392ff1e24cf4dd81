/**
 * Indexes a folder of images, resumably, into an index folder (folder-store.ts): files whose
 * size and mtime are unchanged keep their vectors, deleted files are removed, and every
 * `checkpointEvery` images a segment is appended, so a killed run loses at most one
 * checkpoint's work and a rerun continues from there. The index is locked for the run: a
 * second writer is refused. A file that cannot be decoded is skipped and reported.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { walkImages } from '../data/walk-images.js';
import { createError, DuoError } from '../errors.js';
import type { Encoder } from '../models/encoder.js';
import { loadReranker } from '../models/load-reranker.js';
import type { CrossEncoder } from '../models/reranker.js';
import { describeAnn, storeOptionsFor, type AnnFlags } from './ann.js';
import { FolderStore } from './folder-store.js';
import { MANIFEST, readManifest } from './manifest.js';
import { indexImages } from './index-images.js';
import { openStore } from './open-store.js';
import { isPgLocation } from './pg-location.js';
import { recordedSpec, type StoreInfo } from './vector-store.js';

export interface BuildOptions {
  root: string;
  indexPath: string;
  encoder: Encoder;
  /** the hub id or directory the encoder was loaded from, recorded in the index */
  modelSpec: string;
  headSpec?: string;
  /** a cross-encoder whose image side is computed now and stored in the index for stage 2 */
  reranker?: CrossEncoder;
  /** where that cross-encoder was loaded from, recorded so search can load it again */
  rerankerSpec?: string;
  /** index only these ids (paths relative to root), e.g. one split of a dataset */
  only?: Set<string>;
  batchSize?: number;
  checkpointEvery?: number;
  maxPixels?: number;
  /** called after each batch with images processed so far (encoded or failed) out of those to do */
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
  /** exact or HNSW (`--ann`, src/index/ann.ts): auto for a new index, what it recorded for an existing one */
  ann?: AnnFlags;
}

export interface BuildReport {
  indexPath: string;
  total: number;
  reused: number;
  encoded: number;
  removed: number;
  failed: { id: string; error: string }[];
  segments: number;
  /** the scan the index uses (exact, or HNSW and its settings) */
  scan: string;
  seconds: number;
}

/** What an index of `root` built with these models records about itself. */
export async function imageIndexInfo(o: Pick<BuildOptions, 'root' | 'encoder' | 'modelSpec' | 'headSpec' | 'reranker' | 'rerankerSpec'>): Promise<StoreInfo> {
  let reranker: StoreInfo['reranker'];
  if (o.reranker) {
    if (!o.rerankerSpec) throw createError('BAD_ARGUMENT', 'rerankerSpec', 'needed to record where the cross-encoder comes from');
    // a cross-encoder with an image side computed at index time: one probe image tells its size
    const probe = { width: 1, height: 1, channels: 3 as const, data: new Uint8ClampedArray(3).fill(128), source: '<probe>' };
    const regionSize = o.reranker.regionsOf ? (await o.reranker.regionsOf([probe]))[0]!.length : 0;
    reranker = { id: o.reranker.id, spec: recordedSpec(o.rerankerSpec), regionSize };
  }
  return { items: 'images', modelId: o.encoder.id, modelSpec: recordedSpec(o.modelSpec), headSpec: o.headSpec && recordedSpec(o.headSpec), dim: o.encoder.dim, root: resolve(o.root), reranker };
}

/** The cross-encoder an existing index recorded, if any: from a folder's manifest, or a database table's catalogue. */
async function recordedReranker(indexPath: string): Promise<StoreInfo['reranker']> {
  if (isPgLocation(indexPath)) {
    const existing = await openStore(indexPath).catch((error: unknown) => {
      // a table not created yet records nothing
      if (error instanceof DuoError && error.code === 'FILE_NOT_FOUND') return undefined;
      throw error;
    });
    const reranker = existing?.info.reranker;
    await existing?.close();
    return reranker;
  }
  return existsSync(join(indexPath, MANIFEST)) ? (await readManifest(indexPath)).info.reranker : undefined;
}

export async function buildIndex(given: BuildOptions): Promise<BuildReport> {
  const started = performance.now();
  const root = resolve(given.root);
  const { encoder, indexPath } = given;
  // entries the walk could not read (an unreadable folder, a symlink loop) are reported with the undecodable files
  const unreadable: { id: string; error: string }[] = [];
  const files = (await walkImages(root, (s) => unreadable.push(s))).filter((f) => !given.only || given.only.has(f.id));
  // updating an index: the cross-encoder it recorded keeps supplying the image sides (loaded here, disposed here)
  const recorded = given.reranker ? undefined : await recordedReranker(indexPath);
  const own = recorded ? await loadReranker(recorded.spec) : undefined;
  const options = own ? { ...given, reranker: own, rerankerSpec: recorded!.spec } : given;
  const info = await imageIndexInfo(options);
  // a folder or a database URL (the --ann settings apply to folders; a database has its own index)
  const store = await openStore(indexPath, { write: true, create: info, ...storeOptionsFor(files.length, given.ann) }).catch(async (error: unknown) => {
    await own?.dispose();
    throw error;
  });
  try {
    const held = store.info;
    if (held.items !== 'images') throw createError('BAD_ARGUMENT', indexPath, 'holds a caption collection, not images: use another --index path');
    if (held.modelId !== encoder.id) throw createError('INDEX_MODEL_MISMATCH', indexPath, held.modelId, encoder.id);
    if (held.root !== root) throw createError('BAD_ARGUMENT', indexPath, `indexes ${held.root}, not ${root}: use another --index path`);
    if (held.reranker?.id !== info.reranker?.id) {
      const had = held.reranker ? `the stage-2 sides of ${held.reranker.id}` : 'no stage-2 sides';
      throw createError('BAD_ARGUMENT', indexPath, `stores ${had}; ${info.reranker ? `${info.reranker.id} needs` : 'without a cross-encoder it needs'} a new index (use another --index path)`);
    }
    const known = new Map<string, { bytes?: unknown; mtimeMs?: unknown }>();
    for await (const { id, metadata } of store.list()) known.set(id, metadata);
    const onDisk = new Set(files.map((f) => f.id));
    const gone = [...known.keys()].filter((id) => !onDisk.has(id));
    await store.remove(gone);
    const todo = files.filter((f) => {
      const m = known.get(f.id);
      return !(m && m.bytes === f.size && m.mtimeMs === f.mtimeMs);
    });
    const { encoded, failed } = await indexImages(
      store,
      todo.map((f) => ({ id: f.id, source: f.path, metadata: { bytes: f.size, mtimeMs: f.mtimeMs, modified: new Date(f.mtimeMs).toISOString() } })),
      { ...options, checkpointEvery: options.checkpointEvery ?? 512 },
    );
    await store.flush();
    return { indexPath, total: files.length, reused: files.length - todo.length, encoded, removed: gone.length, failed: [...unreadable.filter((u) => !given.only || given.only.has(u.id)), ...failed], segments: store instanceof FolderStore ? store.segments : 0, scan: store instanceof FolderStore ? describeAnn(store.ann) : 'postgres', seconds: (performance.now() - started) / 1000 };
  } finally {
    await store.close();
    await own?.dispose();
  }
}
