/**
 * Prometheus metrics (prom-client), one registry per server: requests by route and status,
 * request latency, each engine stage's latency, fallbacks, the engines' cache hits and the
 * model queue. Hooks time every request; the search service reports the stages.
 */
import type { FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { EngineResponse } from '../search/engine.js';
import type { ServedIndex } from './search-service.js';
import type { QueryBatcher } from './batcher.js';
import type { RowCacheStats } from './row-cache.js';
import type { WorkQueue } from './work-queue.js';

const SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class ServerMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'method' | 'route' | 'status'>;
  private readonly duration: Histogram<'method' | 'route'>;
  private readonly stages: Histogram<'index' | 'mode' | 'stage'>;
  private readonly fallbacks: Counter<'index' | 'reason'>;

  constructor(indexes: Record<string, ServedIndex>, queue: WorkQueue, rowCache?: RowCacheStats, batcher?: QueryBatcher) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'duo_' });
    this.requests = new Counter({ name: 'duo_http_requests_total', help: 'HTTP requests answered, by route and status', labelNames: ['method', 'route', 'status'], registers });
    this.duration = new Histogram({ name: 'duo_http_request_duration_seconds', help: 'time to answer a request', labelNames: ['method', 'route'], buckets: SECONDS, registers });
    this.stages = new Histogram({
      name: 'duo_search_stage_seconds',
      help: 'engine latency per stage (encode, stage1, stage2, fusion, total) and queue wait, uncached answers only',
      labelNames: ['index', 'mode', 'stage'],
      buckets: SECONDS,
      registers,
    });
    this.fallbacks = new Counter({ name: 'duo_search_fallbacks_total', help: 'hybrid requests answered with stage-1 results', labelNames: ['index', 'reason'], registers });
    new Counter({
      name: 'duo_cache_hits_total',
      help: "the engines' cache hits: query embeddings and whole responses",
      labelNames: ['index', 'cache'],
      registers,
      collect() {
        this.reset();
        // the engine in service now: after an index swap (./index-reload.ts) the counts start again, a counter reset to Prometheus
        for (const [index, { engine }] of Object.entries(indexes)) {
          this.inc({ index, cache: 'embeddings' }, engine.stats.embeddingHits);
          this.inc({ index, cache: 'responses' }, engine.stats.responseHits);
        }
      },
    });
    new Counter({
      name: 'duo_stage2_rows_total',
      help: "stage 2's stored rows read per candidate: from the server's memory (hit) or the index (miss)",
      labelNames: ['source'],
      registers,
      collect() {
        this.reset();
        this.inc({ source: 'hit' }, rowCache?.hits ?? 0);
        this.inc({ source: 'miss' }, rowCache?.misses ?? 0);
      },
    });
    new Counter({
      name: 'duo_search_batches_total',
      help: 'engine calls for text queries (queries arriving together share one); with duo_search_batched_queries_total, the mean batch size',
      registers,
      collect() {
        this.reset();
        this.inc(batcher?.stats.batches ?? 0);
      },
    });
    new Counter({
      name: 'duo_search_batched_queries_total',
      help: 'text queries sent to the engine in batches',
      registers,
      collect() {
        this.reset();
        this.inc(batcher?.stats.queries ?? 0);
      },
    });
    new Gauge({ name: 'duo_queue_depth', help: 'model work waiting for a slot', registers, collect() { this.set(queue.depth); } });
    new Gauge({ name: 'duo_queue_active', help: 'model work running', registers, collect() { this.set(queue.active); } });
    new Counter({
      name: 'duo_queue_rejected_total',
      help: 'model work refused because the queue was full',
      registers,
      collect() {
        this.reset();
        this.inc(queue.rejected);
      },
    });
  }

  /** Times every request: route labels are the route's pattern, never the raw URL. */
  install(app: FastifyInstance): void {
    const started = new WeakMap<object, number>();
    app.addHook('onRequest', async (request) => {
      started.set(request, performance.now());
    });
    app.addHook('onResponse', async (request, reply) => {
      const route = request.routeOptions.url ?? 'unmatched';
      this.requests.inc({ method: request.method, route, status: String(reply.statusCode) });
      const t = started.get(request);
      if (t !== undefined) this.duration.observe({ method: request.method, route }, (performance.now() - t) / 1000);
    });
    app.addHook('onRequestAbort', async (request) => {
      this.requests.inc({ method: request.method, route: request.routeOptions.url ?? 'unmatched', status: '499' });
    });
  }

  /** An answered search: its stages (when computed, not cached) and any fallback. */
  search(index: string, response: EngineResponse, queueMs: number, fallbackReason?: string): void {
    const mode = response.mode;
    if (queueMs > 0) this.stages.observe({ index, mode, stage: 'queue' }, queueMs / 1000);
    if (!response.cached) {
      for (const [stage, ms] of Object.entries(response.latencyMs)) this.stages.observe({ index, mode, stage }, ms / 1000);
    }
    if (fallbackReason) this.fallbacks.inc({ index, reason: fallbackReason });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
