/**
 * Indexes a caption collection for image→text search: each caption's text embedding, with the
 * text itself in the item's metadata (stage 2 reads it back to rescore captions for an image).
 * Text encoding is fast, so a collection is re-encoded whole into a fresh index.
 */
import { existsSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { createError } from '../errors.js';
import { resolve } from 'node:path';
import type { CaptionItem } from '../data/caption-file.js';
import { HUBNESS_KEY, hubnessOf } from '../models/query-bank.js';
import type { Encoder } from '../models/encoder.js';
import { ExactStore } from './exact-store.js';
import { recordedSpec, type StoreInfo, type VectorStore } from './vector-store.js';

export interface CaptionIndexOptions {
  captions: CaptionItem[];
  indexPath: string;
  encoder: Encoder;
  modelSpec: string;
  headSpec?: string;
  /** where the captions came from, recorded as the index root */
  source: string;
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
}

export const captionIndexInfo = (o: Pick<CaptionIndexOptions, 'encoder' | 'modelSpec' | 'headSpec' | 'source'>): StoreInfo => ({
  items: 'captions',
  modelId: o.encoder.id,
  modelSpec: recordedSpec(o.modelSpec),
  headSpec: o.headSpec && recordedSpec(o.headSpec),
  dim: o.encoder.dim,
  root: resolve(o.source),
});

/** Embeds captions into a store (also used by evaluation's in-memory caption store). */
export async function indexCaptions(store: VectorStore, captions: CaptionItem[], encoder: Encoder, o: { batchSize?: number; onProgress?: (done: number, total: number) => void } = {}): Promise<void> {
  const batchSize = o.batchSize ?? 256;
  for (let i = 0; i < captions.length; i += batchSize) {
    const batch = captions.slice(i, i + batchSize);
    const vectors = await encoder.encodeTexts(batch.map((c) => c.text));
    // captions are what image queries rank: their hubness is against the bank's images
    const hub = encoder.queryBank ? hubnessOf(vectors, encoder.queryBank.images, encoder.dim, encoder.queryBank.beta) : undefined;
    await store.upsert(batch.map((c, j) => ({ id: c.id, vector: vectors[j]!, metadata: { ...c.meta, text: c.text, ...(hub ? { [HUBNESS_KEY]: hub[j]! } : {}) } })));
    o.onProgress?.(Math.min(i + batchSize, captions.length), captions.length);
  }
}

/**
 * Builds a fresh caption index beside the target and swaps it in when complete, holding the old
 * index's write lock meanwhile: a failed run leaves the old index as it was, and an index of
 * images at that path is refused rather than replaced.
 */
export async function buildCaptionIndex(options: CaptionIndexOptions): Promise<{ indexPath: string; total: number; seconds: number }> {
  const started = performance.now();
  const target = resolve(options.indexPath);
  const old = existsSync(target) ? await ExactStore.open(target, { write: true }) : undefined;
  const building = `${target}.building-${process.pid}`;
  try {
    if (old && old.info.items !== 'captions') throw createError('BAD_ARGUMENT', options.indexPath, 'holds images, not captions: use another --index path');
    await rm(building, { recursive: true, force: true });
    const store = await ExactStore.open(building, { write: true, create: captionIndexInfo(options) });
    try {
      await indexCaptions(store, options.captions, options.encoder, options);
      await store.flush();
    } finally {
      await store.close();
    }
    await old?.close();
    if (old) await rm(target, { recursive: true, force: true });
    await rename(building, target);
  } catch (error) {
    await rm(building, { recursive: true, force: true });
    throw error;
  } finally {
    await old?.close();
  }
  return { indexPath: options.indexPath, total: options.captions.length, seconds: (performance.now() - started) / 1000 };
}
