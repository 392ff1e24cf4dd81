/**
 * The two-stage engine. It receives its parts (a store, an encoder, optionally a cross-encoder)
 * and disposes none of them: whoever created a part closes it (openEngine, for the CLI, the
 * library and the server). Each stage is a separate, timed step:
 *   encode   queries → embeddings (cached: a repeated query skips the encoder)
 *   stage 1  the store's top k1, metadata filters pushed down to it
 *   stage 2  the cross-encoder rescores those candidates within a time budget; past it the
 *            work is aborted and stage-1 results come back, marked with the reason
 *   order    fusion, tie order and MMR (ordering.ts, the same function evaluation uses)
 * An index of images answers text→image and image→image; an index of captions answers
 * image→text, stage 2 rescoring the captions for the image.
 */
import { join } from 'node:path';
import { LRUCache } from 'lru-cache';
import { loadImage } from '../data/image-loader.js';
import { createError, DuoError } from '../errors.js';
import type { Metadata } from '../index/filter.js';
import type { StoreInfo, VectorStore } from '../index/vector-store.js';
import { correctedScores, HUBNESS_KEY, HUBNESS_POOL } from '../models/query-bank.js';
import type { Encoder, ImageInput } from '../models/encoder.js';
import type { CrossEncoder, RerankCandidate, RerankDirection, RerankQuery } from '../models/reranker.js';
import { orderCandidates } from './ordering.js';
import type { ExpansionTable } from './expansion-table.js';
import { defaultAlpha, expandWeights, LIMITS, parseSearchOptions, type Mode, type SearchOptions, type SearchOptionsInput } from './options.js';
import { embedExpanded, type ExpandWeights } from './query-expansion.js';
import { describeTerms, MAX_TERMS, type QueryTerm } from './query-terms.js';

/**
 * A text, an image, an indexed item ("more like this": its stored vector, the item itself left
 * out of the results), or weighted terms of those three (`"a dog" - "grass"`): the query's
 * embedding is Σ wᵢ·eᵢ over the terms' unit embeddings, normalised again.
 */
export type Query = { text: string } | { image: ImageInput } | { item: string } | { terms: QueryTerm[] };
export type { QueryTerm } from './query-terms.js';

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
  metadata: Metadata;
}

export interface Latency {
  encode: number;
  stage1: number;
  stage2: number;
  fusion: number;
  total: number;
}

export interface EngineResponse {
  query: string;
  mode: Mode;
  results: EngineHit[];
  latencyMs: Latency;
  /** set when hybrid search returned stage-1 results instead, with the reason */
  fallback?: string;
  cached?: boolean;
}

export interface EngineParts {
  store: VectorStore;
  encoder: Encoder;
  reranker?: CrossEncoder;
  /** where a candidate's image is, for cross-encoders that read pixels (default: under the index root) */
  imageOf?: (id: string) => ImageInput;
  /** the query-expansion table, read when a search first asks for `expand` (openEngine: the model's, else the package's) */
  expansions?: () => ExpansionTable | undefined;
}

export interface EngineSettings {
  /** cache sizes in bytes; 0 turns a cache off */
  cacheBytes?: { embeddings?: number; responses?: number };
  /** runs on close(): the creator's clean-up of the parts it made */
  onClose?: () => Promise<void>;
}

const describeQuery = (q: Query): string =>
  'terms' in q
    ? describeTerms(q.terms)
    : 'text' in q
      ? q.text
      : 'item' in q
        ? `item:${q.item}`
        : typeof q.image === 'string'
          ? q.image
          : ((q.image as { source?: string }).source ?? '<image>');
const cacheKey = (q: Query): string | undefined => {
  if (!('terms' in q)) return 'text' in q ? `t:${q.text}` : 'item' in q ? `m:${q.item}` : typeof q.image === 'string' ? `i:${q.image}` : undefined;
  const parts = q.terms.map((t) => {
    const k = cacheKey(termQuery(t));
    return k === undefined ? undefined : `${t.weight}*${k}`;
  });
  // every term, with its weight: an image given as bytes has no key, so neither has the query
  return parts.every((p) => p !== undefined) ? `T:${JSON.stringify(parts)}` : undefined;
};
/** a term without its weight: the plain query it embeds as */
const termQuery = (t: QueryTerm): Query => ('text' in t ? { text: t.text } : 'item' in t ? { item: t.item } : { image: t.image });

/**
 * Σ wᵢ·eᵢ over unit embeddings, normalised. A sum that (nearly) cancels (`"red" - "red"`, or all
 * weights 0) points nowhere and would rank the collection by noise: refused.
 */
export function combineTerms(terms: QueryTerm[], vectors: Float32Array[]): Float32Array {
  const dim = vectors[0]!.length;
  const sum = new Float32Array(dim);
  let scale = 0;
  terms.forEach((t, i) => {
    const v = vectors[i]!;
    let norm = 0;
    for (let d = 0; d < dim; d++) norm += v[d]! * v[d]!;
    norm = Math.sqrt(norm) || 1;
    for (let d = 0; d < dim; d++) sum[d]! += (t.weight * v[d]!) / norm;
    scale += Math.abs(t.weight);
  });
  let n = 0;
  for (let d = 0; d < dim; d++) n += sum[d]! * sum[d]!;
  n = Math.sqrt(n);
  if (!(n > 1e-3 * scale) || !Number.isFinite(n)) {
    throw createError('BAD_ARGUMENT', 'terms', `the weighted sum of the terms' embeddings is (nearly) zero (length ${n.toExponential(2)} for weights summing to ${scale} in absolute value): the terms cancel out, so the query points nowhere`);
  }
  for (let d = 0; d < dim; d++) sum[d]! /= n;
  return sum;
}
const zeroLatency = (): Latency => ({ encode: 0, stage1: 0, stage2: 0, fusion: 0, total: 0 });

/** An LRU bounded in bytes: each entry counts its value as `size` estimates it, and its key (a query with its options, a `where` filter among them: up to a whole request body) at 2 bytes a character. */
function cache<V extends object>(bytes: number, size: (v: V) => number): LRUCache<string, V> | undefined {
  return bytes > 0 ? new LRUCache<string, V>({ maxSize: bytes, sizeCalculation: (v, key) => Math.max(1, size(v) + 2 * key.length) }) : undefined;
}

/**
 * What a cached response holds on the heap, estimated on the high side: about 320 bytes of
 * objects and numbers a hit, strings at 2 bytes a character, about 48 bytes a metadata entry.
 * A colour-collection answer of seven hits (id, path, three metadata fields) with its key comes
 * to ~5.8 KB; measured, such entries hold 5.2–6.3 KB of heap each, where the earlier flat 256
 * bytes a hit counted 2 KB (a full cache held about three times its budget).
 */
function responseBytes(r: EngineResponse): number {
  let n = 256 + 2 * (r.query.length + (r.fallback?.length ?? 0));
  for (const h of r.results) {
    n += 320 + 2 * (h.id.length + (h.path?.length ?? 0) + (h.text?.length ?? 0));
    for (const [key, value] of Object.entries(h.metadata)) n += 48 + 2 * key.length + (typeof value === 'string' ? 2 * value.length : 16);
  }
  return n;
}

export class SearchEngine {
  readonly store: VectorStore;
  readonly encoder: Encoder;
  readonly reranker?: CrossEncoder;
  private readonly imageOf: (id: string) => ImageInput;
  private readonly embeddings?: LRUCache<string, Float32Array>;
  private readonly responses?: LRUCache<string, EngineResponse>;
  private readonly onClose?: () => Promise<void>;
  private readonly expansionTable?: () => ExpansionTable | undefined;
  private table?: ExpansionTable;
  /** cache hits so far, for metrics */
  readonly stats = { embeddingHits: 0, responseHits: 0 };

  constructor(parts: EngineParts, settings: EngineSettings = {}) {
    const { store, encoder, reranker } = parts;
    if (encoder.id !== store.info.modelId) throw createError('INDEX_MODEL_MISMATCH', store.location, store.info.modelId, encoder.id);
    if (encoder.dim !== store.info.dim) throw createError('INDEX_DIM_MISMATCH', store.location, store.info.dim, encoder.dim);
    this.store = store;
    this.encoder = encoder;
    this.reranker = reranker;
    this.imageOf = parts.imageOf ?? ((id) => join(store.info.root, id));
    this.embeddings = cache(settings.cacheBytes?.embeddings ?? 16 << 20, (v) => v.byteLength + 64);
    this.responses = cache(settings.cacheBytes?.responses ?? 32 << 20, responseBytes);
    this.onClose = settings.onClose;
    this.expansionTable = parts.expansions;
  }

  /** The expansion table, read once on first use; a clear error when the engine has none. */
  private expansions(): ExpansionTable {
    this.table ??= this.expansionTable?.();
    if (!this.table) throw createError('BAD_ARGUMENT', 'expand', `no query-expansion table for model ${this.encoder.id} (build one with npm run build:expansions)`);
    return this.table;
  }

  get info(): StoreInfo {
    return this.store.info;
  }

  /** the index holds a caption collection (image→text), not images */
  get captions(): boolean {
    return this.store.info.items === 'captions';
  }

  /**
   * The direction stage 2 runs in here. The index decides it: over captions, hybrid search takes
   * image queries only (texts ranked for an image); over images, stage 2 scores the text of a
   * query (images ranked for a text), and image, item and text-less term queries get stage-1
   * results (finish, below). So every query stage 2 scores on this engine has this direction.
   */
  get direction(): RerankDirection {
    return this.captions ? 'imageToText' : 'textToImage';
  }

  /** Options as the engine will run them: validated, defaults filled, α from the cross-encoder for this engine's direction when unset. */
  resolveOptions(options: SearchOptionsInput | SearchOptions = {}): SearchOptions & { alpha: number } {
    const o = parseSearchOptions(options);
    return { ...o, alpha: o.alpha ?? defaultAlpha(this.reranker, this.direction) };
  }

  /** Throws a clear error for a query the engine cannot answer: empty, too long, or no word the model knows. */
  checkQuery(q: Query): void {
    if ('terms' in q) {
      if (!Array.isArray(q.terms) || q.terms.length === 0) throw createError('BAD_ARGUMENT', 'terms', 'needs at least one term');
      if (q.terms.length > MAX_TERMS) throw createError('BAD_ARGUMENT', 'terms', `has ${q.terms.length} terms, over the limit of ${MAX_TERMS}`);
      q.terms.forEach((t, i) => {
        if (typeof t.weight !== 'number' || !Number.isFinite(t.weight)) throw createError('BAD_ARGUMENT', `terms.${i}.weight`, 'is not a finite number');
        try {
          this.checkQuery(termQuery(t));
        } catch (error) {
          // named by the term: `terms.1.text: is empty`
          if (error instanceof DuoError && error.code === 'BAD_ARGUMENT') throw createError('BAD_ARGUMENT', `terms.${i}.${'text' in t ? 'text' : 'item' in t ? 'item' : 'image'}`, String(error.args[1]));
          throw error;
        }
      });
      if (q.terms.every((t) => t.weight === 0)) throw createError('BAD_ARGUMENT', 'terms', 'every weight is 0: the query points nowhere');
      return;
    }
    if ('item' in q && (typeof q.item !== 'string' || q.item === '')) throw createError('BAD_ARGUMENT', 'item', 'is empty');
    if (!('text' in q)) return;
    if (typeof q.text !== 'string' || q.text.trim() === '') throw createError('BAD_ARGUMENT', 'query', 'is empty');
    // nothing but control, format or separator characters, lone surrogates or U+FFFD (what invalid
    // UTF-8 decodes to): the encoder would embed only its start and end tokens and rank the
    // collection by nothing
    if (!/[^\p{Cc}\p{Cf}\p{Cs}\p{Z}\uFFFD]/u.test(q.text)) throw createError('BAD_ARGUMENT', 'query', 'has no text (only control, format or replacement characters)');
    if (q.text.length > LIMITS.queryChars) throw createError('BAD_ARGUMENT', 'query', `is ${q.text.length} characters, over the limit of ${LIMITS.queryChars}`);
    const coverage = this.encoder.textCoverage?.(q.text);
    if (coverage && coverage.known.length === 0) throw createError('QUERY_NOT_UNDERSTOOD', q.text, coverage.unknown);
  }

  /**
   * Query embeddings, from the cache where the same text or image path was seen before; `decoded[i]` (if set) is what query i's image decoded to.
   * An item query reads the item's stored vector (never cached: the store is the source).
   */
  async embed(queries: Query[], decoded: (Query | undefined)[] = [], signal?: AbortSignal, expand?: ExpandWeights): Promise<Float32Array[]> {
    if (queries.some((q) => 'terms' in q)) {
      // the terms of every query embedded in one pass (each term cached as the plain query it is), then combined
      const parts: Query[] = [];
      const partsDecoded: (Query | undefined)[] = [];
      const spans = queries.map((q, i) => {
        const start = parts.length;
        if ('terms' in q) parts.push(...q.terms.map(termQuery));
        else {
          partsDecoded[start] = decoded[i];
          parts.push(q);
        }
        return [start, parts.length] as const;
      });
      const vectors = await this.embed(parts, partsDecoded, signal, expand);
      return queries.map((q, i) => ('terms' in q ? combineTerms(q.terms, vectors.slice(...spans[i]!)) : vectors[spans[i]![0]]!));
    }
    const itemQueries = queries.flatMap((q, i) => ('item' in q ? [i] : []));
    const ids = itemQueries.map((i) => (queries[i] as { item: string }).item);
    const stored = ids.length > 0 ? await this.store.get(ids) : [];
    stored.forEach((it, j) => {
      if (!it) throw createError('ITEM_NOT_FOUND', ids[j]!, this.store.location);
    });
    // an expanded text embedding is cached under its weights as well
    const keyOf = (q: Query) => (expand && 'text' in q ? `x${expand.synonym},${expand.hypernym},${expand.caption}:${cacheKey(q)}` : cacheKey(q));
    const out: (Float32Array | undefined)[] = queries.map((q) => {
      if ('item' in q) return undefined;
      const key = keyOf(q);
      const hit = key ? this.embeddings?.get(key) : undefined;
      if (hit) this.stats.embeddingHits++;
      return hit;
    });
    const texts = queries.flatMap((q, i) => (!out[i] && 'text' in q ? [i] : []));
    const images = queries.flatMap((q, i) => (!out[i] && 'image' in q ? [i] : []));
    const textsIn = texts.map((i) => (queries[i] as { text: string }).text);
    const tv = texts.length === 0 ? [] : expand ? await embedExpanded(this.encoder, textsIn, this.expansions(), expand, { signal }) : await this.encoder.encodeTexts(textsIn, { signal });
    const iv = images.length > 0 ? await this.encoder.encodeImages(images.map((i) => ((decoded[i] ?? queries[i]) as { image: ImageInput }).image), { signal }) : [];
    texts.forEach((qi, j) => (out[qi] = tv[j]));
    images.forEach((qi, j) => (out[qi] = iv[j]));
    queries.forEach((q, i) => {
      const key = keyOf(q);
      if (key && !('item' in q)) this.embeddings?.set(key, out[i]!);
    });
    itemQueries.forEach((qi, j) => (out[qi] = stored[j]!.vector));
    return out as Float32Array[];
  }

  async search(queries: Query[], options: SearchOptionsInput | SearchOptions = {}, control: { signal?: AbortSignal } = {}): Promise<EngineResponse[]> {
    const o = this.resolveOptions(options);
    const { signal } = control;
    if (o.mode === 'hybrid' && !this.reranker) throw createError('BAD_ARGUMENT', 'mode', 'hybrid search needs a cross-encoder: build the index with --reranker, or pass one');
    if (o.mode === 'hybrid' && this.captions && queries.some((q) => 'text' in q)) {
      throw createError('BAD_ARGUMENT', 'mode', 'this index holds captions: a cross-encoder scores image–text pairs, so hybrid search here takes image queries');
    }
    queries.forEach((q) => this.checkQuery(q));
    const optionsKey = JSON.stringify(o);
    const keys = queries.map((q) => {
      const k = cacheKey(q);
      return k ? `${k}|${optionsKey}` : undefined;
    });
    const responses: (EngineResponse | undefined)[] = keys.map((k) => {
      const hit = k ? this.responses?.get(k) : undefined;
      if (!hit) return undefined;
      this.stats.responseHits++;
      return { ...hit, cached: true, latencyMs: zeroLatency() };
    });
    const todo = queries.flatMap((_, i) => (responses[i] ? [] : [i]));
    if (todo.length === 0) return responses as EngineResponse[];

    const t0 = performance.now();
    // an image query is decoded once for both stages: the starter models then share one backbone pass
    const decoded = new Map<number, Query>();
    if (o.mode === 'hybrid') {
      for (const i of todo) {
        const q = queries[i]!;
        if ('image' in q && typeof q.image === 'string') decoded.set(i, { image: await loadImage(q.image) });
      }
    }
    const vectors = await this.embed(todo.map((i) => queries[i]!), todo.map((i) => decoded.get(i)), signal, expandWeights(o));
    const t1 = performance.now();
    const want = o.offset + o.k;
    // stage 2 and MMR choose from k1 candidates; plain stage 1 needs only what it returns; the hubness
    // correction reorders at least the store's top HUBNESS_POOL, so which k1 stage 2 gets does not depend on k1's size
    const corrects = todo.some((i) => this.hubnessLambda(queries[i]!) > 0);
    const pool = Math.max(o.mode === 'hybrid' || o.mmr < 1 ? Math.max(o.k1, want) : want, corrects ? HUBNESS_POOL : 0);
    // an item query (or a query with item terms) asks for more, to leave those items out
    const selves = todo.map((i) => {
      const q = queries[i]!;
      return 'item' in q ? [q.item] : 'terms' in q ? q.terms.flatMap((t) => ('item' in t ? [t.item] : [])) : [];
    });
    const extra = Math.max(0, ...selves.map((s) => new Set(s).size));
    const found = await this.store.search(vectors, pool + extra, { filter: o.where, signal });
    const lists = extra === 0 ? found : found.map((hits, j) => hits.filter((h) => !selves[j]!.includes(h.id)).slice(0, pool));
    const t2 = performance.now();
    const share = { encode: (t1 - t0) / todo.length, stage1: (t2 - t1) / todo.length };
    for (const [j, qi] of todo.entries()) {
      const response = await this.finish(queries[qi]!, lists[j]!, o, share, decoded.get(qi), signal);
      responses[qi] = response;
      if (keys[qi] && !response.fallback) this.responses?.set(keys[qi]!, response);
    }
    return responses as EngineResponse[];
  }

  private async finish(
    query: Query,
    hits: { id: string; score: number }[],
    o: SearchOptions & { alpha: number },
    share: { encode: number; stage1: number },
    decoded: Query | undefined,
    signal: AbortSignal | undefined,
  ): Promise<EngineResponse> {
    // every candidate's metadata (its hubness, a caption's text, what a result shows), not its
    // vector: the correction reads the store's top 200, and an index on disk would read 200
    // vector rows for it. An item removed between the two reads (a writer in another process)
    // drops out of the list.
    const read = await this.store.metadataOf(hits.map((h) => h.id));
    const kept = hits.map((_, i) => i).filter((i) => read[i]);
    if (kept.length < hits.length) hits = kept.map((i) => hits[i]!);
    let metadata = kept.map((i) => read[i]!);
    const lambda = this.hubnessLambda(query);
    if (lambda > 0) {
      // stage 1's order is cosine less λ·hubness (query-bank.ts), over all the store returned (HUBNESS_POOL or more)
      const hub = metadata.map((m) => (typeof m[HUBNESS_KEY] === 'number' ? (m[HUBNESS_KEY] as number) : undefined));
      const corrected = correctedScores(hits.map((h) => h.score), hub, lambda);
      const order = hits.map((_, i) => i).sort((a, b) => corrected[b]! - corrected[a]! || a - b);
      hits = order.map((i) => ({ id: hits[i]!.id, score: corrected[i]! }));
      metadata = order.map((i) => metadata[i]!);
    }
    // what stage 2 and MMR choose from (k1) or what stage 1 returns: the store may have returned more, for the correction
    // (of this query, or of another in its batch)
    const keep = o.mode === 'hybrid' || o.mmr < 1 ? Math.max(o.k1, o.offset + o.k) : o.offset + o.k;
    if (hits.length > keep) {
      hits = hits.slice(0, keep);
      metadata = metadata.slice(0, keep);
    }
    // MMR compares candidates with each other: their vectors are read for the k1 it chooses from,
    // and only for it (an item removed in between leaves MMR one candidate fewer, not a refill)
    let vectors: Float32Array[] | undefined;
    if (o.mmr < 1) {
      const items = await this.store.get(hits.map((h) => h.id));
      const still = hits.map((_, i) => i).filter((i) => items[i]);
      if (still.length < hits.length) {
        hits = still.map((i) => hits[i]!);
        metadata = still.map((i) => metadata[i]!);
      }
      vectors = still.map((i) => items[i]!.vector);
    }
    let stage2: number[] | undefined;
    let fallback: string | undefined;
    let stage2Ms = 0;
    if (o.mode === 'hybrid' && 'image' in query && !this.captions) {
      // image→image: an image–text matcher has no score for a pair of images
      fallback = 'image→image: the cross-encoder scores image–text pairs, so these are stage-1 results';
    } else if (o.mode === 'hybrid' && 'item' in query) {
      fallback = 'more like this: the query is an indexed item, not an image–text pair the cross-encoder can score, so these are stage-1 results';
    } else if (o.mode === 'hybrid' && 'terms' in query && (this.captions || !query.terms.some((t) => 'text' in t && t.weight > 0))) {
      fallback = this.captions
        ? 'weighted terms over captions: the cross-encoder scores an image query against captions, so these are stage-1 results'
        : 'weighted terms without a positive text term: the cross-encoder scores image–text pairs, so these are stage-1 results';
    } else if (o.mode === 'hybrid' && hits.length > 0) {
      const t = performance.now();
      const outcome = await this.rescore(rerankQueries(decoded ?? query), hits, metadata, o, signal);
      stage2Ms = performance.now() - t;
      if ('scores' in outcome) stage2 = outcome.scores;
      else fallback = outcome.fallback;
    }
    const t = performance.now();
    const ordered = orderCandidates({
      stage1: hits.map((h) => h.score),
      stage2,
      fusion: o.fusion,
      fusionOptions: o,
      mmr: o.mmr,
      vectors,
      take: o.offset + o.k,
    });
    const results = ordered.order.slice(o.offset).map((i, r) => {
      const id = hits[i]!.id;
      return {
        rank: o.offset + r + 1,
        id,
        ...(this.captions ? { text: String(metadata[i]!.text ?? '') } : { path: join(this.info.root, id) }),
        score: ordered.scores[i]!,
        stage1: { score: hits[i]!.score, rank: i + 1 },
        ...(stage2 ? { stage2: { score: stage2[i]!, rank: ordered.stage2Ranks![i]! } } : {}),
        metadata: metadata[i]!,
      };
    });
    const fusionMs = performance.now() - t;
    return {
      query: describeQuery(query),
      mode: o.mode,
      results,
      latencyMs: { ...share, stage2: stage2Ms, fusion: fusionMs, total: share.encode + share.stage1 + stage2Ms + fusionMs },
      ...(fallback ? { fallback } : {}),
    };
  }

  /**
   * λ of the hubness correction for this query: the encoder's query bank's, for a cross-modal
   * query (text over images, an image over captions; items were indexed with their hubness
   * against the other modality's bank), else 0. Weighted terms count as text when one text term
   * is positive, as stage 2 reads them.
   */
  private hubnessLambda(query: Query): number {
    const lambda = this.encoder.queryBank?.lambda ?? 0;
    if (lambda === 0) return 0;
    const crossModal = this.captions ? 'image' in query : 'text' in query || ('terms' in query && query.terms.some((t) => 'text' in t && t.weight > 0));
    return crossModal ? lambda : 0;
  }

  /** Stage 2 within its budget: on time-out the cross-encoder's work is aborted and stage 1 stands. */
  private async rescore(
    queries: { query: RerankQuery; weight: number }[],
    hits: { id: string; score: number }[],
    metadata: Metadata[],
    o: SearchOptions,
    outer: AbortSignal | undefined,
  ): Promise<{ scores: number[] } | { fallback: string }> {
    const budget = new AbortController();
    const timer = setTimeout(() => budget.abort(new BudgetExceeded(o.budgetMs)), o.budgetMs);
    const signal = outer ? AbortSignal.any([outer, budget.signal]) : budget.signal;
    const started = performance.now();
    try {
      const candidates = await this.candidates(hits, metadata, signal);
      const work = weightedScores(queries, (q) => this.reranker!.score(q, candidates, { batchSize: o.rerankBatchSize, signal }));
      // a cross-encoder that checks the signal only between batches is not waited for
      let onAbort: (() => void) | undefined;
      const aborted = new Promise<never>((_, reject) => {
        onAbort = () => reject(signal.reason);
        signal.addEventListener('abort', onAbort, { once: true });
      });
      work.catch(() => {}); // its rejection after an abort is expected, and must not go unhandled
      aborted.catch(() => {});
      const { scores } = await Promise.race([work, aborted]).finally(() => signal.removeEventListener('abort', onAbort!));
      // a cross-encoder that computes synchronously never yields to the timer: judge it on arrival too
      if (performance.now() - started > o.budgetMs) throw new BudgetExceeded(o.budgetMs);
      return { scores };
    } catch (error) {
      if (outer?.aborted) throw outer.reason ?? createError('ABORTED', 'search');
      const why = error instanceof BudgetExceeded ? `passed its ${o.budgetMs} ms budget` : `failed: ${(error as Error).message}`;
      return { fallback: `stage 2 ${why}; stage-1 results` };
    } finally {
      clearTimeout(timer);
    }
  }

  private async candidates(hits: { id: string; score: number }[], metadata: Metadata[], signal: AbortSignal): Promise<RerankCandidate[]> {
    if (this.captions) return hits.map((h, i) => ({ id: h.id, text: String(metadata[i]!.text ?? ''), stage1Score: h.score }));
    // stage-2 image sides stored at index time by this very cross-encoder: read the candidates' rows
    const stored = this.info.reranker?.id === this.reranker!.id && this.info.reranker.regionSize > 0;
    const regions = stored ? await this.store.regions(hits.map((h) => h.id), signal) : [];
    return hits.map((h, i) => ({ id: h.id, image: this.imageOf(h.id), regions: regions[i], stage1Score: h.score }));
  }

  /** Runs the clean-up of whoever created this engine's parts (openEngine); disposes nothing itself. */
  async close(): Promise<void> {
    await this.onClose?.();
  }
}

/**
 * What stage 2 scores for a query: the query itself, or for weighted terms each text term with
 * its weight. A terms query's stage-2 score is Σ wᵢ·sᵢ over its text terms (divided by the sum of
 * the positive weights), the cross-encoder's scores combined as stage 1 combines embeddings: a
 * negative term keeps demoting what matches it, where rescoring by the positive text alone
 * would bring those items back up within the top k1 (wholly so with fusion `replace`). Image and
 * item terms have no image–text score: they act through stage 1 (the candidates, and its share
 * of the fusion). Queries with no positive text term fall back to stage 1 (finish, above).
 */
function rerankQueries(q: Query): { query: RerankQuery; weight: number }[] {
  if (!('terms' in q)) return [{ query: q as RerankQuery, weight: 1 }];
  const texts = q.terms.flatMap((t) => ('text' in t && t.weight !== 0 ? [{ query: { text: t.text }, weight: t.weight }] : []));
  const positive = texts.reduce((s, t) => s + Math.max(0, t.weight), 0);
  return texts.map((t) => ({ ...t, weight: t.weight / positive }));
}

async function weightedScores(queries: { query: RerankQuery; weight: number }[], score: (q: RerankQuery) => Promise<{ scores: number[] }>): Promise<{ scores: number[] }> {
  if (queries.length === 1 && queries[0]!.weight === 1) return score(queries[0]!.query);
  let sum: number[] | undefined;
  for (const { query, weight } of queries) {
    const { scores } = await score(query);
    sum ??= scores.map(() => 0);
    scores.forEach((s, i) => (sum![i]! += weight * s));
  }
  return { scores: sum ?? [] };
}

class BudgetExceeded extends Error {
  constructor(ms: number) {
    super(`stage 2 passed its ${ms} ms budget`);
  }
}
