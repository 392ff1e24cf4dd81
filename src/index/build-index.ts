/**
 * Indexes a folder of images, resumably: an existing index at the same path is read first,
 * files whose size and mtime are unchanged keep their vectors, and the index is saved
 * (atomically) every `checkpointEvery` encoded images, so a killed run loses at most one
 * checkpoint's work. A file that cannot be decoded is skipped and reported, never fatal.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { loadImage, type DecodedImage } from '../data/image-loader.js';
import { walkImages, type ImageFile } from '../data/walk-images.js';
import { createError } from '../errors.js';
import type { Encoder } from '../models/encoder.js';
import { ExactIndex } from './exact-index.js';
import { loadIndex, saveIndex, type IndexEntry } from './index-file.js';
import { loadRegions, regionPath, saveRegions } from './region-file.js';
import type { CrossEncoder } from '../models/reranker.js';

export interface BuildOptions {
  root: string;
  indexPath: string;
  encoder: Encoder;
  /** the hub id or directory the encoder was loaded from, recorded in the index */
  modelSpec: string;
  headSpec?: string;
  /** a cross-encoder whose image side is computed now and stored beside the index (`<index>.stage2`) */
  reranker?: CrossEncoder;
  /** index only these ids (paths relative to root), e.g. one split of a dataset */
  only?: Set<string>;
  batchSize?: number;
  checkpointEvery?: number;
  maxPixels?: number;
  /** called after each batch with images processed so far (encoded or failed) out of those to do */
  onProgress?: (done: number, total: number) => void;
}

export interface BuildReport {
  indexPath: string;
  total: number;
  reused: number;
  encoded: number;
  removed: number;
  failed: { id: string; error: string }[];
  seconds: number;
}

export async function buildIndex(options: BuildOptions): Promise<BuildReport> {
  const started = performance.now();
  const root = resolve(options.root);
  const { encoder, indexPath } = options;
  const files = (await walkImages(root)).filter((f) => !options.only || options.only.has(f.id));

  let store = new ExactIndex(encoder.dim);
  let entries = new Map<string, IndexEntry>();
  let createdAt = new Date().toISOString();
  if (existsSync(indexPath)) {
    const saved = await loadIndex(indexPath, { modelId: encoder.id });
    if (saved.header.root !== root) {
      throw createError('BAD_ARGUMENT', indexPath, `indexes ${saved.header.root}, not ${root}: use another --index path`);
    }
    store = saved.store;
    entries = new Map(saved.header.entries.map((e) => [e.id, e]));
    createdAt = saved.header.createdAt;
  }

  const onDisk = new Set(files.map((f) => f.id));
  const gone = [...entries.keys()].filter((id) => !onDisk.has(id));
  store.remove(gone);
  gone.forEach((id) => entries.delete(id));
  const regionsOf = options.reranker?.regionsOf?.bind(options.reranker);
  const regions = regionsOf ? await loadRegions(regionPath(indexPath), options.reranker!.id) : new Map<string, Float32Array>();
  gone.forEach((id) => regions.delete(id));
  const stale = new Set(
    files
      .filter((f) => {
        const e = entries.get(f.id);
        return !(e && e.size === f.size && e.mtimeMs === f.mtimeMs && store.has(f.id));
      })
      .map((f) => f.id),
  );
  // unchanged images whose stage-2 side is missing are decoded again, but not re-embedded
  const todo = files.filter((f) => stale.has(f.id) || (regionsOf && !regions.has(f.id)));

  const save = async () => {
    await saveIndex(indexPath, {
      store,
      header: { modelId: encoder.id, modelSpec: options.modelSpec, headSpec: options.headSpec, dim: encoder.dim, normalized: true, root, createdAt, updatedAt: new Date().toISOString(), entries: [...entries.values()] },
    });
    if (regionsOf) await saveRegions(regionPath(indexPath), options.reranker!.id, regions);
  };

  const failed: BuildReport['failed'] = [];
  const batchSize = options.batchSize ?? 16;
  const checkpointEvery = options.checkpointEvery ?? 512;
  let sinceCheckpoint = 0;
  let encoded = 0;
  for (let i = 0; i < todo.length; i += batchSize) {
    const batch = todo.slice(i, i + batchSize);
    const decoded = await decodeAll(batch, options.maxPixels, failed);
    const fresh = decoded.filter((d) => stale.has(d.file.id));
    if (fresh.length > 0) {
      const vectors = await encoder.encodeImages(fresh.map((d) => d.image), { batchSize });
      store.upsert(fresh.map((d) => d.file.id), vectors);
      for (const { file } of fresh) entries.set(file.id, { id: file.id, size: file.size, mtimeMs: file.mtimeMs });
      encoded += fresh.length;
    }
    if (regionsOf && decoded.length > 0) {
      const r = await regionsOf(decoded.map((d) => d.image));
      decoded.forEach((d, j) => regions.set(d.file.id, r[j]!));
    }
    sinceCheckpoint += decoded.length;
    options.onProgress?.(Math.min(i + batchSize, todo.length), todo.length);
    if (sinceCheckpoint >= checkpointEvery) {
      await save();
      sinceCheckpoint = 0;
    }
  }
  if (todo.length > 0 || gone.length > 0 || !existsSync(indexPath)) await save();
  return {
    indexPath,
    total: files.length,
    reused: files.length - stale.size,
    encoded,
    removed: gone.length,
    failed,
    seconds: (performance.now() - started) / 1000,
  };
}

async function decodeAll(
  batch: ImageFile[],
  maxPixels: number | undefined,
  failed: BuildReport['failed'],
): Promise<{ file: ImageFile; image: DecodedImage }[]> {
  const results = await Promise.allSettled(batch.map((f) => loadImage(f.path, { maxPixels })));
  const ok: { file: ImageFile; image: DecodedImage }[] = [];
  results.forEach((r, i) => {
    if (r.status === 'fulfilled') ok.push({ file: batch[i]!, image: r.value });
    else failed.push({ id: batch[i]!.id, error: r.reason instanceof Error ? r.reason.message : String(r.reason) });
  });
  return ok;
}
