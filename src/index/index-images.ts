/**
 * Encodes images into a store: decode once, embed, and (when the store records a
 * cross-encoder) compute the image side stage 2 reads back. Shared by `duo index` (a folder)
 * and evaluation (a dataset split), so both index exactly the same way.
 */
import { loadImage, type DecodedImage } from '../data/image-loader.js';
import { createError } from '../errors.js';
import type { Metadata } from './filter.js';
import type { Encoder, ImageInput } from '../models/encoder.js';
import { HUBNESS_KEY, hubnessOf } from '../models/query-bank.js';
import type { CrossEncoder } from '../models/reranker.js';
import type { VectorStore } from './vector-store.js';

export interface ImageItem {
  id: string;
  source: ImageInput;
  metadata?: Metadata;
}

/** Where encoded images go: a store, or anything that takes items the same way (duo embed's shard files). */
export type ImageSink = Pick<VectorStore, 'info' | 'location' | 'upsert' | 'flush'>;

export interface IndexImagesOptions {
  encoder: Encoder;
  /** required when the store records a cross-encoder: its image side is stored with each item */
  reranker?: CrossEncoder;
  batchSize?: number;
  maxPixels?: number;
  /** flush (a checkpoint) after this many images; default: only at the end */
  checkpointEvery?: number;
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

/** Returns the images that could not be decoded, with the reason; they are skipped, never fatal. */
export async function indexImages(store: ImageSink, items: ImageItem[], o: IndexImagesOptions): Promise<{ encoded: number; failed: { id: string; error: string }[] }> {
  const failed: { id: string; error: string }[] = [];
  const batchSize = o.batchSize ?? 16;
  const regionsOf = store.info.reranker?.regionSize ? o.reranker?.regionsOf?.bind(o.reranker) : undefined;
  if (store.info.reranker?.regionSize && !regionsOf) throw createError('BAD_ARGUMENT', '--reranker', `${store.location} keeps the stage-2 sides of ${store.info.reranker.id}: that cross-encoder is needed to add images`);
  let encoded = 0;
  let sinceCheckpoint = 0;
  for (let i = 0; i < items.length; i += batchSize) {
    o.signal?.throwIfAborted();
    const batch = items.slice(i, i + batchSize);
    const decoded = await decodeAll(batch, o.maxPixels, failed);
    if (decoded.length > 0) {
      const images = decoded.map((d) => d.image);
      const vectors = await o.encoder.encodeImages(images, { batchSize, signal: o.signal });
      const regions = regionsOf ? await regionsOf(images) : undefined;
      // images are what text queries rank: their hubness is against the bank's captions (query-bank.ts)
      const bank = o.encoder.queryBank;
      const hub = bank ? hubnessOf(vectors, bank.texts, o.encoder.dim, bank.beta) : undefined;
      const metadata = (j: number, m: Metadata | undefined) => (hub ? { ...m, [HUBNESS_KEY]: hub[j]! } : m);
      await store.upsert(decoded.map((d, j) => ({ id: d.item.id, vector: vectors[j]!, metadata: metadata(j, d.item.metadata), regions: regions?.[j] })));
      encoded += decoded.length;
    }
    sinceCheckpoint += batch.length;
    o.onProgress?.(Math.min(i + batchSize, items.length), items.length);
    if (o.checkpointEvery && sinceCheckpoint >= o.checkpointEvery) {
      await store.flush();
      sinceCheckpoint = 0;
    }
  }
  return { encoded, failed };
}

async function decodeAll(batch: ImageItem[], maxPixels: number | undefined, failed: { id: string; error: string }[]): Promise<{ item: ImageItem; image: DecodedImage }[]> {
  const decode = (f: ImageItem) => (typeof f.source === 'string' || f.source instanceof Uint8Array ? loadImage(f.source, { maxPixels }) : Promise.resolve(f.source));
  const results = await Promise.allSettled(batch.map(decode));
  const ok: { item: ImageItem; image: DecodedImage }[] = [];
  for (const [i, first] of results.entries()) {
    // libvips keeps one error buffer for the whole process: when several decodes fail at once,
    // one can carry off another's message and leave it "Unknown error". A failed file is decoded
    // again on its own (a broken file fails fast), so each is reported with its own reason.
    const r = first.status === 'fulfilled' ? first : (await Promise.allSettled([decode(batch[i]!)]))[0]!;
    if (r.status === 'fulfilled') ok.push({ item: batch[i]!, image: r.value });
    else failed.push({ id: batch[i]!.id, error: r.reason instanceof Error ? r.reason.message : String(r.reason) });
  }
  return ok;
}
