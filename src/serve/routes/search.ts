/** POST /v1/search: text → items, with every engine option. */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { ServeContext } from '../context.js';
import { errors, searchResponseSchema, textSearchSchema } from '../schemas.js';

export const searchRoutes: FastifyPluginAsyncZod<{ ctx: ServeContext }> = async (app, { ctx }) => {
  app.post(
    '/v1/search',
    {
      schema: {
        summary: 'Search by text',
        description: 'Text → images (or captions, on a caption index). mode hybrid rescores the top k1 with the cross-encoder; results carry both stages’ scores and ranks.',
        tags: ['search'],
        body: textSearchSchema(ctx.limits),
        response: { 200: searchResponseSchema, ...errors(400, 413, 415, 422, 503) },
      },
      config: { queryField: 'text' },
    },
    async (request, reply) => {
      const { text, ...options } = request.body;
      return ctx.service.answer(ctx.main, { text }, options, reply);
    },
  );
};
