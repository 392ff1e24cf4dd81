/**
 * One search request, from validated options to the API's response: model work waits in the
 * bounded queue (overload: 503 + Retry-After, or stage 1 alone, marked), the request's signal
 * cancels it when the client leaves or the request's budget runs out, and the engine's answer
 * becomes the API shape (thumbnail URLs, paging, explain).
 */
import type { FastifyReply } from 'fastify';
import { createError } from '../errors.js';
import type { EngineResponse, Query, SearchEngine } from '../search/engine.js';
import { ApiError } from './errors.js';
import type { ServeLimits } from './limits.js';
import type { ServerMetrics } from './metrics.js';
import type { QueryBatcher } from './batcher.js';
import { requestControl } from './request-control.js';
import type { ApiOptions, Hit, SearchResponse } from './schemas.js';
import { QueueFull, type WorkQueue } from './work-queue.js';

export interface SearchServiceParts {
  limits: ServeLimits;
  queue: WorkQueue;
  metrics: ServerMetrics;
  /** text queries that arrive together share one encoder batch and one stage-1 scan */
  batcher: QueryBatcher;
}

/** An index the server answers from, with its name in metrics. */
export interface ServedIndex {
  name: string;
  engine: SearchEngine;
}

export const thumbnailUrl = (id: string, size = 256) => `/v1/images/${encodeURIComponent(id)}/thumbnail?size=${size}`;
export const imageUrl = (id: string) => `/v1/images/${encodeURIComponent(id)}`;

const OVERLOAD_FALLBACK = 'the server is busy (its stage-2 queue is full): stage-1 results';

/** A short, bounded label for a fallback reason, for metrics. */
function reasonLabel(text: string): string {
  if (text === OVERLOAD_FALLBACK) return 'overload';
  if (/budget/.test(text)) return 'budget';
  if (/failed/.test(text)) return 'failed';
  if (/image→image/.test(text)) return 'image-query';
  if (/more like this/.test(text)) return 'item-query';
  return 'other';
}

export class SearchService {
  /** searches running, including those whose client has gone (their work is being cancelled) */
  private readonly running = new Set<Promise<unknown>>();

  constructor(private readonly parts: SearchServiceParts) {}

  /** Resolves once no search runs: the engines may then be closed under nobody. */
  async drain(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  answer(index: ServedIndex, query: Query, options: ApiOptions, reply: FastifyReply): Promise<SearchResponse> {
    const work = this.run(index, query, options, reply);
    this.running.add(work);
    void work.finally(() => this.running.delete(work)).catch(() => {});
    return work;
  }

  private async run(index: ServedIndex, query: Query, options: ApiOptions, reply: FastifyReply): Promise<SearchResponse> {
    const { limits, queue, metrics } = this.parts;
    const { engine } = index;
    const { explain, ...asked } = options;
    if (asked.mode === 'hybrid' && !engine.reranker) {
      throw createError('BAD_ARGUMENT', 'mode', 'this index has no cross-encoder: hybrid search is not available (build the index with --reranker)');
    }
    // the backbone pass of an image query, and stage 2, are the model work the queue bounds
    const heavy = 'image' in query || (asked.mode === 'hybrid' && !('item' in query));
    const control = requestControl(reply, limits.requestBudgetMs, limits.retryAfterS);
    let release: (() => void) | undefined;
    let queueMs = 0;
    let overloaded = false;
    try {
      if (heavy) {
        const t = performance.now();
        try {
          release = await queue.acquire(control.signal);
        } catch (error) {
          if (!(error instanceof QueueFull)) throw error;
          if (limits.onOverload !== 'stage1' || 'image' in query) {
            throw new ApiError(503, 'OVERLOADED', `the server is busy (${error.waiting} searches waiting for the models); try again shortly`, undefined, {
              'retry-after': String(limits.retryAfterS),
            });
          }
          overloaded = true; // a text query's stage 1 needs no model slot
        }
        queueMs = performance.now() - t;
      }
      // stage 2's own budget stays as asked (it is part of the cache key) unless less time is left;
      // then it ends a margin before the request's, so its fallback is answered in time
      const left = control.left();
      const cap = Math.max(1, Math.floor(left - Math.max(25, left * 0.1)));
      const run = { ...asked, mode: overloaded ? ('stage1' as const) : asked.mode, budgetMs: Math.min(asked.budgetMs, cap) };
      let response: EngineResponse | undefined;
      if ('text' in query) {
        engine.checkQuery(query); // a query the engine refuses fails alone, not its whole batch
        response = await this.parts.batcher.search(engine, query.text, run, control.signal);
      } else [response] = await engine.search([query], run, { signal: control.signal });
      // a copy: the engine's response may be the very object its cache holds
      const result = overloaded ? { ...response!, mode: asked.mode, fallback: OVERLOAD_FALLBACK } : response!;
      metrics.search(index.name, result, queueMs, result.fallback && options.mode === 'hybrid' ? reasonLabel(result.fallback) : undefined);
      return await this.shape(engine, result, asked, queueMs, explain);
    } finally {
      release?.();
      control.done();
    }
  }

  /** `engine`: the one the request ran on, even when the index was swapped meanwhile */
  private async shape(engine: SearchEngine, r: EngineResponse, options: Omit<ApiOptions, 'explain'>, queueMs: number, explain: boolean): Promise<SearchResponse> {
    const images = !engine.captions;
    const results: Hit[] = r.results.map((h) => ({
      rank: h.rank,
      id: h.id,
      score: h.score,
      stage1: h.stage1,
      ...(h.stage2 ? { stage2: h.stage2 } : {}),
      ...(h.text !== undefined ? { text: h.text } : {}),
      metadata: h.metadata,
      ...(images ? { thumbnailUrl: thumbnailUrl(h.id), imageUrl: imageUrl(h.id) } : {}),
    }));
    const out: SearchResponse = {
      query: r.query,
      mode: r.mode,
      k: options.k,
      offset: options.offset,
      results,
      latencyMs: { queue: queueMs, ...r.latencyMs },
      ...(r.fallback ? { fallback: r.fallback } : {}),
      ...(r.cached ? { cached: true } : {}),
      ...(results.length === options.k && options.offset + options.k <= this.parts.limits.maxOffset ? { next: { offset: options.offset + options.k } } : {}),
    };
    if (explain) {
      const o = engine.resolveOptions(options);
      out.explain = {
        model: engine.encoder.id,
        ...(engine.reranker ? { reranker: engine.reranker.id } : {}),
        items: await engine.store.count(),
        options: { mode: o.mode, k: o.k, k1: o.k1, offset: o.offset, fusion: o.fusion, alpha: o.alpha, rrfK: o.rrfK, normalisation: o.normalisation, mmr: o.mmr, budgetMs: o.budgetMs, ...(o.where ? { where: o.where } : {}) },
      };
    }
    return out;
  }
}
