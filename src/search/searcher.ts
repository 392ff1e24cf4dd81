/**
 * Stage 1: a query (text or image) → its embedding → the exact index's top k. The index
 * remembers which model built it; a searcher refuses an encoder with other weights.
 */
import { join } from 'node:path';
import { createError } from '../errors.js';
import { loadIndex, type IndexHeader } from '../index/index-file.js';
import type { ExactIndex } from '../index/exact-index.js';
import type { Encoder, ImageInput } from '../models/encoder.js';
import { loadEncoder, type LoadEncoderOptions } from '../models/load-encoder.js';

export type Query = { text: string } | { image: ImageInput };

export interface SearchHit {
  rank: number;
  id: string;
  path: string;
  score: number;
}

export interface SearchResponse {
  query: string;
  results: SearchHit[];
  latencyMs: { encode: number; search: number; total: number };
}

export class Searcher {
  private constructor(
    readonly header: IndexHeader,
    private readonly store: ExactIndex,
    readonly encoder: Encoder,
  ) {}

  /** Opens an index and the model that built it (or `model`, which must have the same weights). */
  static async open(indexPath: string, options: { model?: string; encoder?: Encoder } & LoadEncoderOptions = {}): Promise<Searcher> {
    const { header, store } = await loadIndex(indexPath);
    const encoder = options.encoder ?? (await loadEncoder(options.model ?? header.modelSpec, { head: header.headSpec, ...options }));
    if (encoder.id !== header.modelId) throw createError('INDEX_MODEL_MISMATCH', indexPath, header.modelId, encoder.id);
    return new Searcher(header, store, encoder);
  }

  get size(): number {
    return this.store.size;
  }

  /** Batch search: queries share one encoder call per kind and one pass over the index. */
  async search(queries: Query[], k: number): Promise<SearchResponse[]> {
    if (!Number.isInteger(k) || k < 1) throw createError('BAD_ARGUMENT', 'k', `must be a positive integer, got ${k}`);
    const t0 = performance.now();
    const textAt = queries.flatMap((q, i) => ('text' in q ? [i] : []));
    const imageAt = queries.flatMap((q, i) => ('image' in q ? [i] : []));
    const vectors: Float32Array[] = new Array(queries.length);
    const texts = await this.encoder.encodeTexts(textAt.map((i) => (queries[i] as { text: string }).text));
    textAt.forEach((qi, j) => (vectors[qi] = texts[j]!));
    const images = await this.encoder.encodeImages(imageAt.map((i) => (queries[i] as { image: ImageInput }).image));
    imageAt.forEach((qi, j) => (vectors[qi] = images[j]!));
    const t1 = performance.now();
    const hits = await this.store.search(vectors, k);
    const t2 = performance.now();
    const per = queries.length || 1;
    return queries.map((q, i) => ({
      query: 'text' in q ? q.text : typeof q.image === 'string' ? q.image : (q.image as { source?: string }).source ?? '<image>',
      results: hits[i]!.map((h, r) => ({ rank: r + 1, id: h.id, path: join(this.header.root, h.id), score: h.score })),
      latencyMs: { encode: (t1 - t0) / per, search: (t2 - t1) / per, total: (t2 - t0) / per },
    }));
  }

  async close(): Promise<void> {
    await this.encoder.dispose();
  }
}
