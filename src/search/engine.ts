/**
 * The two-stage engine. Each stage is a separate, timed step:
 *   encode   queries → embeddings (LRU-cached: a repeated query skips the encoder)
 *   stage 1  exact index top-k1 (metadata filters applied here, before stage 2)
 *   stage 2  the cross-encoder rescores the k1 candidates, within a time budget
 *   fusion   replace / weighted / rrf, then optional MMR diversity, then the top k2
 * If stage 2 fails or runs past its budget, the stage-1 ranking is returned, marked with
 * the reason: a search never fails because the reranker did. Whole responses are cached too.
 * An index of images answers text→image and image→image; an index of a caption collection
 * (buildCaptionIndex) answers image→text, stage 2 rescoring the captions for the image.
 */
import { join } from 'node:path';
import { loadImage } from '../data/image-loader.js';
import { createError } from '../errors.js';
import type { ExactIndex } from '../index/exact-index.js';
import { loadIndex, type IndexEntry, type IndexHeader } from '../index/index-file.js';
import { loadRegions, regionPath } from '../index/region-file.js';
import type { Encoder, ImageInput } from '../models/encoder.js';
import { loadEncoder, type LoadEncoderOptions } from '../models/load-encoder.js';
import type { CrossEncoder, RerankCandidate } from '../models/reranker.js';
import { LruCache } from '../util/lru.js';
import { fuse, ranksOf, type FusionMode, type Normalisation } from './fusion.js';
import { mmr } from './mmr.js';

export type Query = { text: string } | { image: ImageInput };
export type Mode = 'stage1' | 'hybrid';

export interface SearchOptions {
  mode: Mode;
  k1: number;
  k2: number;
  fusion: FusionMode;
  alpha: number;
  rrfK: number;
  normalisation: Normalisation;
  /** MMR trade-off in (0, 1]; 1 or unset: no diversification */
  mmrLambda?: number;
  /** metadata filters: `folder` matches an id prefix, other keys an entry's stored fields */
  where?: Record<string, string | number | boolean>;
  /** stage 2's time budget per query, in ms */
  budgetMs: number;
  rerankBatchSize?: number;
}

export const DEFAULT_SEARCH: SearchOptions = {
  mode: 'stage1',
  k1: 100,
  k2: 10,
  fusion: 'weighted',
  alpha: 0.5,
  rrfK: 60,
  normalisation: 'robust',
  budgetMs: 2000,
};

export interface EngineHit {
  rank: number;
  id: string;
  /** the image file, in an index of images */
  path?: string;
  /** the caption, in an index of captions */
  text?: string;
  /** the score the final order is by: fused in hybrid mode, stage 1's otherwise */
  score: number;
  stage1: { score: number; rank: number };
  stage2?: { score: number; rank: number };
}

export interface EngineResponse {
  query: string;
  mode: Mode;
  results: EngineHit[];
  latencyMs: { encode: number; stage1: number; stage2: number; fusion: number; total: number };
  /** set when hybrid search fell back to stage 1 */
  fallback?: string;
  cached?: boolean;
}

const describeQuery = (q: Query) => ('text' in q ? q.text : typeof q.image === 'string' ? q.image : ((q.image as { source?: string }).source ?? '<image>'));
const cacheKey = (q: Query) => ('text' in q ? `t:${q.text}` : typeof q.image === 'string' ? `i:${q.image}` : undefined);

export class SearchEngine {
  readonly embeddings = new LruCache<string, Float32Array>(10_000);
  readonly responses = new LruCache<string, EngineResponse>(1_000);
  private readonly entries: Map<string, IndexEntry>;

  constructor(
    readonly header: IndexHeader,
    readonly store: ExactIndex,
    readonly encoder: Encoder,
    readonly reranker?: CrossEncoder,
    /** the cross-encoder's image sides stored at index time, by id */
    readonly regions: Map<string, Float32Array> = new Map(),
  ) {
    if (encoder.id !== header.modelId) throw createError('INDEX_MODEL_MISMATCH', '<index>', header.modelId, encoder.id);
    this.entries = new Map(header.entries.map((e) => [e.id, e]));
  }

  /** Opens an index with the model that built it (or `model`, which must have the same weights). */
  static async open(indexPath: string, options: { model?: string; encoder?: Encoder; reranker?: CrossEncoder } & LoadEncoderOptions = {}): Promise<SearchEngine> {
    const { header, store } = await loadIndex(indexPath);
    const encoder = options.encoder ?? (await loadEncoder(options.model ?? header.modelSpec, { head: header.headSpec, ...options }));
    if (encoder.id !== header.modelId) throw createError('INDEX_MODEL_MISMATCH', indexPath, header.modelId, encoder.id);
    const regions = options.reranker?.regionsOf ? await loadRegions(regionPath(indexPath), options.reranker.id) : new Map<string, Float32Array>();
    return new SearchEngine(header, store, encoder, options.reranker, regions);
  }

  get size(): number {
    return this.store.size;
  }

  pathOf(id: string): string {
    return join(this.header.root, id);
  }

  /** the index holds a caption collection (image→text), not images */
  get captions(): boolean {
    return this.header.items === 'captions';
  }

  private candidate(id: string, stage1Score: number): RerankCandidate {
    if (this.captions) return { id, text: String(this.entries.get(id)?.meta?.text ?? ''), stage1Score };
    return { id, image: this.pathOf(id), regions: this.regions.get(id), stage1Score };
  }

  private item(id: string): { path: string } | { text: string } {
    return this.captions ? { text: String(this.entries.get(id)?.meta?.text ?? '') } : { path: this.pathOf(id) };
  }

  /** Query embeddings, from the cache where the same text or image path was seen before; `decoded[i]` (if set) is what query i's image decoded to. */
  async embed(queries: Query[], decoded: (Query | undefined)[] = []): Promise<Float32Array[]> {
    const out: (Float32Array | undefined)[] = queries.map((q) => {
      const key = cacheKey(q);
      return key ? this.embeddings.get(key) : undefined;
    });
    const texts = queries.flatMap((q, i) => (!out[i] && 'text' in q ? [i] : []));
    const images = queries.flatMap((q, i) => (!out[i] && 'image' in q ? [i] : []));
    const tv = await this.encoder.encodeTexts(texts.map((i) => (queries[i] as { text: string }).text));
    const iv = await this.encoder.encodeImages(images.map((i) => ((decoded[i] ?? queries[i]) as { image: ImageInput }).image));
    texts.forEach((qi, j) => (out[qi] = tv[j]));
    images.forEach((qi, j) => (out[qi] = iv[j]));
    queries.forEach((q, i) => {
      const key = cacheKey(q);
      if (key) this.embeddings.set(key, out[i]!);
    });
    return out as Float32Array[];
  }

  private filterFor(where: SearchOptions['where']): ((id: string) => boolean) | undefined {
    if (!where || Object.keys(where).length === 0) return undefined;
    return (id) =>
      Object.entries(where).every(([key, value]) => {
        if (key === 'folder') return id.startsWith(String(value).replace(/\/?$/, '/'));
        return this.entries.get(id)?.meta?.[key] === value;
      });
  }

  async search(queries: Query[], options: Partial<SearchOptions> = {}): Promise<EngineResponse[]> {
    // unless the caller sets α, a reranker that was tuned with one brings its own
    const o = { ...DEFAULT_SEARCH, alpha: this.reranker?.fusionAlpha ?? DEFAULT_SEARCH.alpha, ...options };
    validate(o);
    if (o.mode === 'hybrid' && !this.reranker) throw createError('BAD_ARGUMENT', 'mode', 'hybrid search needs a cross-encoder (--reranker)');
    if (o.mode === 'hybrid' && this.captions && queries.some((q) => 'text' in q)) {
      throw createError('BAD_ARGUMENT', 'mode', 'this index holds captions: a cross-encoder scores image–text pairs, so hybrid search here takes image queries');
    }
    const keys = queries.map((q) => {
      const k = cacheKey(q);
      return k ? `${k}|${JSON.stringify(o)}` : undefined;
    });
    const responses: (EngineResponse | undefined)[] = keys.map((k) => {
      const hit = k ? this.responses.get(k) : undefined;
      return hit ? { ...hit, cached: true, latencyMs: { encode: 0, stage1: 0, stage2: 0, fusion: 0, total: 0 } } : undefined;
    });
    const todo = queries.flatMap((_, i) => (responses[i] ? [] : [i]));
    if (todo.length > 0) {
      const t0 = performance.now();
      // an image query is decoded once for both stages: the starter models then share one backbone pass
      const decoded = new Map<number, Query>();
      if (o.mode === 'hybrid') {
        for (const i of todo) {
          const q = queries[i]!;
          if ('image' in q && typeof q.image === 'string') decoded.set(i, { image: await loadImage(q.image) });
        }
      }
      const vectors = await this.embed(todo.map((i) => queries[i]!), todo.map((i) => decoded.get(i)));
      const t1 = performance.now();
      const k1 = o.mode === 'hybrid' ? Math.max(o.k1, o.k2) : o.k2;
      const lists = await this.store.search(vectors, k1, this.filterFor(o.where));
      const t2 = performance.now();
      const share = { encode: (t1 - t0) / todo.length, stage1: (t2 - t1) / todo.length };
      for (const [j, qi] of todo.entries()) {
        const response = await this.finish(queries[qi]!, lists[j]!, o, share, decoded.get(qi));
        responses[qi] = response;
        if (keys[qi]) this.responses.set(keys[qi]!, response);
      }
    }
    return responses as EngineResponse[];
  }

  private async finish(query: Query, hits: { id: string; score: number }[], o: SearchOptions, share: { encode: number; stage1: number }, decoded?: Query): Promise<EngineResponse> {
    const stage1 = hits.map((h, r) => ({ id: h.id, score: h.score, rank: r + 1 }));
    let stage2Scores: number[] | undefined;
    let fallback: string | undefined;
    let stage2Ms = 0;
    if (o.mode === 'hybrid' && 'image' in query && !this.captions) {
      // image→image: an image–text matcher has no score for a pair of images
      fallback = 'image→image: the cross-encoder scores image–text pairs, so these are stage-1 results';
    } else if (o.mode === 'hybrid' && stage1.length > 0) {
      const t = performance.now();
      try {
        stage2Scores = await withBudget(
          this.reranker!.score(decoded ?? query, stage1.map((h) => this.candidate(h.id, h.score)), { batchSize: o.rerankBatchSize }).then((r) => r.scores),
          o.budgetMs,
        );
        // a reranker that computes synchronously never yields to the timer: judge it on arrival too
        if (performance.now() - t > o.budgetMs) {
          stage2Scores = undefined;
          throw new BudgetExceeded();
        }
      } catch (error) {
        fallback = `stage 2 ${error instanceof BudgetExceeded ? `passed its ${o.budgetMs} ms budget` : `failed: ${(error as Error).message}`}; stage-1 results`;
      }
      stage2Ms = performance.now() - t;
    }
    const t = performance.now();
    const s1 = stage1.map((h) => h.score);
    const fused = stage2Scores ? fuse(s1, stage2Scores, o.fusion, o) : s1;
    const ranks2 = stage2Scores ? ranksOf(stage2Scores) : undefined;
    let order = fused.map((_, i) => i).sort((a, b) => fused[b]! - fused[a]! || a - b);
    if (o.mmrLambda !== undefined && o.mmrLambda < 1) {
      const vectors = order.map((i) => this.store.get(stage1[i]!.id)!);
      order = mmr(order.map((i) => fused[i]!), vectors, o.mmrLambda, o.k2).map((p) => order[p]!);
    }
    const results = order.slice(0, o.k2).map((i, r) => ({
      rank: r + 1,
      id: stage1[i]!.id,
      ...this.item(stage1[i]!.id),
      score: fused[i]!,
      stage1: { score: stage1[i]!.score, rank: stage1[i]!.rank },
      ...(stage2Scores ? { stage2: { score: stage2Scores[i]!, rank: ranks2![i]! } } : {}),
    }));
    const fusionMs = performance.now() - t;
    return {
      query: describeQuery(query),
      mode: o.mode,
      results,
      latencyMs: { ...share, stage2: stage2Ms, fusion: fusionMs, total: share.encode + share.stage1 + stage2Ms + fusionMs },
      ...(fallback ? { fallback } : {}),
    };
  }

  async close(): Promise<void> {
    await this.encoder.dispose();
    await this.reranker?.dispose();
  }
}

class BudgetExceeded extends Error {}

function withBudget<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new BudgetExceeded()), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

function validate(o: SearchOptions): void {
  const int = (name: string, v: number) => {
    if (!Number.isInteger(v) || v < 1) throw createError('BAD_ARGUMENT', name, `must be a positive integer, got ${v}`);
  };
  int('k1', o.k1);
  int('k2', o.k2);
  if (!(o.alpha >= 0 && o.alpha <= 1)) throw createError('BAD_ARGUMENT', 'alpha', `must be in [0, 1], got ${o.alpha}`);
  if (o.mmrLambda !== undefined && !(o.mmrLambda > 0 && o.mmrLambda <= 1)) throw createError('BAD_ARGUMENT', 'mmrLambda', `must be in (0, 1], got ${o.mmrLambda}`);
  if (!(o.budgetMs > 0)) throw createError('BAD_ARGUMENT', 'budgetMs', `must be positive, got ${o.budgetMs}`);
  if (!['stage1', 'hybrid'].includes(o.mode)) throw createError('BAD_ARGUMENT', 'mode', `must be stage1 or hybrid, got ${o.mode}`);
  if (!['replace', 'weighted', 'rrf'].includes(o.fusion)) throw createError('BAD_ARGUMENT', 'fusion', `must be replace, weighted or rrf, got ${o.fusion}`);
}
