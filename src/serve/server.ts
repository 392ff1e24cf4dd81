/**
 * `duo serve`'s root: opens the engines (the store, the encoder and the cross-encoder the index
 * recorded), warms every model with a query, then builds the app and listens; only then does it
 * log that it is ready. SIGINT/SIGTERM close it gracefully: no new connections, requests in
 * flight finish (each within its time budget), then the engines are closed.
 */
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { DecodedImage } from '../data/image-loader.js';
import { DuoError } from '../errors.js';
import { SearchEngine } from '../search/engine.js';
import { openEngine } from '../search/open-engine.js';
import type { VectorStore } from '../index/vector-store.js';
import { buildApp } from './app.js';
import { followIndex, type IndexFollower } from './index-reload.js';
import { withRowCache, type RowCacheStats } from './row-cache.js';
import { limitsOf, type ServeSettings } from './settings.js';

export interface ServeOptions extends ServeSettings {
  index: string;
  model?: string;
  /** the cross-encoder: 'recorded' (default), a folder, or 'none' */
  reranker?: string;
  webRoot?: string | false;
  version?: string;
  /** stop on these signals (default SIGINT and SIGTERM; [] for none, as in tests) */
  signals?: NodeJS.Signals[];
  /**
   * one of `duo serve --workers N`'s processes (./cluster.ts): it logs `worker listening`
   * (the primary logs `ready` once all are), tells the primary over IPC, and names itself in a
   * `duo-worker` response header (its pid)
   */
  worker?: boolean;
}

export interface RunningServer {
  app: FastifyInstance;
  url: string;
  /** resolves once the server has closed (a signal, or close()) */
  closed: Promise<void>;
  close(): Promise<void>;
  /** serves the index folder's newest commit now, when it changed (otherwise within --reload-interval-ms) */
  reload(): Promise<void>;
}

const isUrl = (location: string) => /^[a-z][a-z0-9+.-]*:\/\//i.test(location);

/** A tiny grey image: enough to run the image side of every model once. */
const warmImage = (): DecodedImage => ({ data: new Uint8ClampedArray(64 * 64 * 3).fill(128), width: 64, height: 64, channels: 3, source: 'warm-up' });

/** One query through each model the engine holds, so the first real request pays no load or JIT cost. */
async function warm(engine: SearchEngine): Promise<void> {
  if (!engine.captions) {
    try {
      await engine.search([{ text: 'a photo of a dog on the grass' }], { mode: engine.reranker ? 'hybrid' : 'stage1', k: 1, k1: 8 });
    } catch (error) {
      if (!(error instanceof DuoError && error.code === 'QUERY_NOT_UNDERSTOOD')) throw error;
    }
  }
  await engine.search([{ image: warmImage() }], { mode: engine.reranker && engine.captions ? 'hybrid' : 'stage1', k: 1, k1: 8 });
}

export async function startServer(o: ServeOptions): Promise<RunningServer> {
  const started = performance.now();
  const cacheBytes = o.cache ? undefined : { embeddings: 0, responses: 0 };
  const engines: SearchEngine[] = [];
  const rowCache: RowCacheStats = { hits: 0, misses: 0 };
  let app: FastifyInstance | undefined;
  let follower: IndexFollower | undefined;
  try {
    // `opened` owns the models (and the first store) until the server closes; the engine in
    // service owns only its store, so an index swap (./index-reload.ts) closes just that
    const opened = await openEngine({ index: o.index, model: o.model, reranker: o.reranker ?? 'recorded', cacheBytes });
    engines.push(opened);
    // the same parts, the store's stage-2 rows kept in memory (./row-cache.ts)
    const serving = (store: VectorStore) =>
      new SearchEngine({ store: withRowCache(store, o.stage2CacheBytes, rowCache), encoder: opened.encoder, reranker: opened.reranker }, { cacheBytes, onClose: () => store.close() });
    const engine = serving(opened.store);
    engines.unshift(engine);
    const captions = o.captions ? await openEngine({ index: o.captions, model: o.model, reranker: o.reranker ?? 'recorded', cacheBytes }) : undefined;
    if (captions) engines.push(captions);
    const loaded = performance.now();
    for (const e of [engine, ...(captions ? [captions] : [])]) await warm(e);
    const warmed = performance.now();
    const cacheDir = o.cacheDir ?? (isUrl(o.index) ? join(tmpdir(), 'duo-search-thumbnails') : join(dirname(resolve(o.index)), '.duo-cache', 'thumbnails'));
    app = await buildApp({
      engine,
      captions,
      limits: limitsOf(o),
      cacheDir,
      webRoot: o.webRoot,
      version: o.version,
      logger: { level: o.logLevel },
      rowCache,
    });
    if (o.worker) {
      const pid = String(process.pid);
      app.addHook('onRequest', async (_request, reply) => {
        void reply.header('duo-worker', pid);
      });
    }
    let done!: () => void;
    const closed = new Promise<void>((r) => (done = r));
    const drained = app;
    if (o.reloadIntervalMs > 0 && !isUrl(o.index)) {
      const served = app.served.main;
      follower = await followIndex({
        location: o.index,
        intervalMs: o.reloadIntervalMs,
        // past the request budget every request on the old engine has answered
        graceMs: o.requestBudgetMs + 5_000,
        open: async () => {
          const next = await openEngine({ index: o.index, encoder: opened.encoder, reranker: opened.reranker ?? 'none', cacheBytes });
          const e = serving(next.store);
          try {
            await warm(e);
          } catch (error) {
            await e.close(); // its store: the models are the server's
            throw error;
          }
          return e;
        },
        swap: (next) => {
          const old = served.engine;
          served.engine = next;
          engines.splice(engines.indexOf(old), 1, next);
          return old;
        },
        retire: (old) => old.close(),
        log: app.log,
      });
    }
    const stopFollowing = follower;
    app.addHook('onClose', async () => {
      await stopFollowing?.stop();
      await drained.drainSearches();
      // the engine in service (its store), the caption engine, then `opened` (the models; its first store again, a no-op)
      for (const e of engines.splice(0)) await e.close();
      done();
    });
    app.log.info(
      {
        index: engine.store.location,
        items: await engine.store.count(),
        model: engine.encoder.id,
        reranker: engine.reranker?.id ?? null,
        captions: captions ? captions.store.location : null,
        loadMs: Math.round(loaded - started),
        warmMs: Math.round(warmed - loaded),
        cache: o.cache,
        stage2CacheBytes: o.stage2CacheBytes,
        thumbnails: cacheDir,
      },
      'models loaded and warm',
    );
    await app.listen({ host: o.host, port: o.port });
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : o.port;
    const url = `http://${o.host.includes(':') ? `[${o.host}]` : o.host}:${port}`;
    if (o.worker) {
      app.log.info({ url }, 'worker listening');
      process.send?.({ duo: 'ready', url });
    } else app.log.info({ url }, 'ready');
    const running = app;
    const signals = o.signals ?? ['SIGINT', 'SIGTERM'];
    // a second signal while draining (Ctrl-C reaches a worker and, forwarded, again from the primary) changes nothing
    let closing = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (closing) return;
      closing = true;
      running.log.info({ signal }, 'shutting down: finishing the requests in flight');
      void running.close();
    };
    for (const s of signals) process.on(s, onSignal);
    void closed.then(() => {
      for (const s of signals) process.off(s, onSignal);
    });
    return { app: running, url, closed, close: () => running.close(), reload: async () => await stopFollowing?.check() };
  } catch (error) {
    if (app) await app.close();
    else for (const e of engines.reverse()) await e.close();
    throw error;
  }
}
