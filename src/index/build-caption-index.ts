/**
 * Indexes a caption collection for image→text search: each caption's text embedding, with the
 * text itself stored in the entry (stage 2 reads it back to rescore captions for an image).
 * Text encoding is fast enough that a collection is re-encoded whole; the save is atomic.
 */
import { resolve } from 'node:path';
import type { CaptionItem } from '../data/caption-file.js';
import type { Encoder } from '../models/encoder.js';
import { ExactIndex } from './exact-index.js';
import { saveIndex } from './index-file.js';

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

export async function buildCaptionIndex(options: CaptionIndexOptions): Promise<{ indexPath: string; total: number; seconds: number }> {
  const started = performance.now();
  const { encoder, captions } = options;
  const store = new ExactIndex(encoder.dim);
  const batchSize = options.batchSize ?? 256;
  for (let i = 0; i < captions.length; i += batchSize) {
    const batch = captions.slice(i, i + batchSize);
    store.upsert(batch.map((c) => c.id), await encoder.encodeTexts(batch.map((c) => c.text)));
    options.onProgress?.(Math.min(i + batchSize, captions.length), captions.length);
  }
  const now = new Date().toISOString();
  await saveIndex(options.indexPath, {
    store,
    header: {
      items: 'captions',
      modelId: encoder.id,
      modelSpec: options.modelSpec,
      headSpec: options.headSpec,
      dim: encoder.dim,
      normalized: true,
      root: resolve(options.source),
      createdAt: now,
      updatedAt: now,
      entries: captions.map((c) => ({ id: c.id, size: 0, mtimeMs: 0, meta: { ...c.meta, text: c.text } })),
    },
  });
  return { indexPath: options.indexPath, total: captions.length, seconds: (performance.now() - started) / 1000 };
}
