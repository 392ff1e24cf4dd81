/**
 * The HTTP application: Fastify with the zod type provider (one schema validates a request and
 * describes it in the OpenAPI document), the route plugins, one error shape, metrics and the
 * web page. It receives open engines and closes none of them: whoever opened them does
 * (./server.ts for `duo serve`, the tests for theirs). Tests drive it in-process with inject().
 */
import fastifyMultipart from '@fastify/multipart';
import fastifySwagger from '@fastify/swagger';
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import { jsonSchemaTransform, jsonSchemaTransformObject, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { VectorStore } from '../index/vector-store.js';
import type { SearchEngine } from '../search/engine.js';
import { QueryBatcher } from './batcher.js';
import type { ServeContext } from './context.js';
import { clientErrorHandler, frameworkErrors, installErrorHandling } from './errors.js';
import { collectFacets } from './facets.js';
import { ImageFiles } from './images.js';
import type { RowCacheStats } from './row-cache.js';
import { parseLimits, THUMBNAIL_SIZES, type ServeLimits, type ServeLimitsInput } from './limits.js';
import { ServerMetrics } from './metrics.js';
import { imageRoutes } from './routes/images.js';
import { itemRoutes } from './routes/items.js';
import { searchRoutes } from './routes/search.js';
import { statusRoutes } from './routes/status.js';
import { uploadSearchRoutes } from './routes/upload-search.js';
import type { Collection } from './schemas.js';
import { SearchService, type ServedIndex } from './search-service.js';
import { defaultWebRoot, registerWeb } from './web.js';
import { WorkQueue } from './work-queue.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** resolves once no search runs (the server's root closes the engines after it) */
    drainSearches(): Promise<void>;
    /** the indexes served; `duo serve` swaps an engine when its index folder gets a new commit (./index-reload.ts) */
    served: { main: ServedIndex; captions?: ServedIndex };
  }
}

export interface AppOptions {
  /** the index to serve (images, or captions) */
  engine: SearchEngine;
  /** a caption index for image→text (POST /v1/captions/search) */
  captions?: SearchEngine;
  limits?: ServeLimitsInput | ServeLimits;
  /** where thumbnails are cached */
  cacheDir: string;
  /** the built web page; false serves the API alone */
  webRoot?: string | false;
  logger?: FastifyServerOptions['logger'];
  /** false until the models are warm (./server.ts warms them before listening) */
  warm?: () => boolean;
  /** package version, for the OpenAPI document */
  version?: string;
  /** the counts of the stage-2 row cache in front of the store (./row-cache.ts), for metrics */
  rowCache?: RowCacheStats;
}

/** One structured line per request (method, route pattern, status, ms), at info; the arrival at debug. */
class RequestLog extends LogController {
  override incomingRequest(request: FastifyRequest): void {
    request.log.debug({ method: request.method, url: request.url }, 'incoming request');
  }

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const line = { method: request.method, route: request.routeOptions.url ?? 'unmatched', status: reply.statusCode, ms: Math.round(reply.elapsedTime * 100) / 100 };
    if (error) reply.log.error({ ...line, err: error }, 'request errored');
    else reply.log.info(line, 'request completed');
  }
}

export async function buildApp(o: AppOptions): Promise<FastifyInstance> {
  const limits = parseLimits(o.limits);
  const app = Fastify({
    logger: o.logger ?? false,
    bodyLimit: limits.bodyLimitBytes,
    logController: new RequestLog(),
    routerOptions: { maxParamLength: 4096 },
    forceCloseConnections: 'idle',
    // errors before any route (a URL that does not decode, a request Node's parser refuses) in the one error shape too
    frameworkErrors,
    clientErrorHandler,
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installErrorHandling(app);

  const main: ServedIndex = { name: 'main', engine: o.engine };
  const captions: ServedIndex | undefined = o.captions ? { name: 'captions', engine: o.captions } : undefined;
  const queue = new WorkQueue(limits.queueConcurrency, limits.queueLength);
  const batcher = new QueryBatcher();
  const metrics = new ServerMetrics({ main, ...(captions ? { captions } : {}) }, queue, o.rowCache, batcher);
  metrics.install(app);
  // per store: a swapped-in index has facets of its own
  const facets = new WeakMap<object, Promise<Collection['facets']>>();
  const facetsOf = (store: VectorStore) => facets.get(store) ?? facets.set(store, collectFacets(store)).get(store)!;
  const ctx: ServeContext = {
    main,
    captions,
    limits,
    service: new SearchService({ limits, queue, metrics, batcher }),
    files: new ImageFiles(() => main.engine.store, o.cacheDir),
    metrics,
    collection: async () => {
      const { engine } = main;
      return {
        items: await engine.store.count(),
        kind: engine.captions ? 'captions' : 'images',
        model: engine.encoder.id,
        ...(engine.reranker ? { reranker: engine.reranker.id } : {}),
        captions: captions !== undefined,
        facets: await facetsOf(engine.store),
        limits: { maxK: limits.maxK, maxK1: limits.maxK1, maxOffset: limits.maxOffset, maxQueryChars: limits.maxQueryChars, uploadLimitBytes: limits.uploadLimitBytes, thumbnailSizes: [...THUMBNAIL_SIZES] },
      };
    },
    ready: async () => {
      if (o.warm && !o.warm()) return { ready: false, why: 'the models are warming up' };
      try {
        await Promise.all([main.engine.store.count(), captions?.engine.store.count()]);
        return { ready: true };
      } catch (error) {
        return { ready: false, why: `the store does not answer: ${(error as Error).message}` };
      }
    },
  };

  // a search whose client went away is no connection to wait for, but its work still holds the engines
  const drain = () => ctx.service.drain();
  app.decorate('drainSearches', drain);
  app.decorate('served', { main, ...(captions ? { captions } : {}) });
  app.addHook('onClose', drain);

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'duo-search',
        version: o.version ?? '1',
        description: 'Two-stage image–text search: a bi-encoder and a vector index for recall, a cross-encoder for precision. Errors: {"error": {"code", "message", "field"?}}.',
      },
      tags: [{ name: 'search' }, { name: 'items' }, { name: 'images' }, { name: 'status' }],
    },
    transform: jsonSchemaTransform,
    transformObject: jsonSchemaTransformObject,
  });
  await app.register(fastifyMultipart, { limits: { fileSize: limits.uploadLimitBytes, files: 1 } });
  for (const routes of [searchRoutes, uploadSearchRoutes, itemRoutes, imageRoutes, statusRoutes]) await app.register(routes, { ctx });
  if (o.webRoot !== false) await registerWeb(app, o.webRoot ?? defaultWebRoot());
  return app;
}
