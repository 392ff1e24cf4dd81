/** GET /v1/health, /v1/ready, /v1/collection, /metrics and /openapi.json. */
import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { ServeContext } from '../context.js';
import { collectionSchema, errors } from '../schemas.js';

export const statusRoutes: FastifyPluginAsyncZod<{ ctx: ServeContext }> = async (app, { ctx }) => {
  app.get('/v1/health', { schema: { summary: 'Alive', tags: ['status'], response: { 200: z.object({ status: z.literal('ok') }) } } }, async () => ({ status: 'ok' as const }));
  app.get(
    '/v1/ready',
    { schema: { summary: 'Ready: models warm, store reachable', tags: ['status'], response: { 200: z.object({ status: z.literal('ready') }), ...errors(503) } } },
    async (_request, reply) => {
      const state = await ctx.ready();
      if (state.ready) return { status: 'ready' as const };
      return reply.code(503).send({ error: { code: 'NOT_READY', message: state.why } });
    },
  );
  app.get(
    '/v1/collection',
    { schema: { summary: 'What is served: item count, models, filter chips from the metadata, limits', tags: ['status'], response: { 200: collectionSchema } } },
    async () => ctx.collection(),
  );
  app.get(
    '/metrics',
    { schema: { summary: 'Prometheus metrics', tags: ['status'], response: { 200: { description: 'the Prometheus text format', content: { 'text/plain': { schema: z.string() } } } } } },
    async (_request, reply) => reply.type(ctx.metrics.contentType).send(await ctx.metrics.text()),
  );
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
};
