/** POST /v1/search: text → items, with every engine option. */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Query } from '../../search/engine.js';
import type { ServeContext } from '../context.js';
import { errors, searchResponseSchema, textSearchSchema } from '../schemas.js';

export const searchRoutes: FastifyPluginAsyncZod<{ ctx: ServeContext }> = async (app, { ctx }) => {
  app.post(
    '/v1/search',
    {
      schema: {
        summary: 'Search by text',
        description: 'Text (or weighted terms: texts and indexed items, some negative) → images (or captions, on a caption index). mode hybrid rescores the top k1 with the cross-encoder; results carry both stages’ scores and ranks.',
        tags: ['search'],
        body: textSearchSchema(ctx.limits),
        response: { 200: searchResponseSchema, ...errors(400, 413, 415, 422, 503) },
      },
      config: { queryField: 'text' },
    },
    async (request, reply) => {
      const { text, terms, ...options } = request.body;
      const query: Query = terms
        ? { terms: terms.map((t) => (t.text !== undefined ? { weight: t.weight, text: t.text } : { weight: t.weight, item: t.item! })) }
        : { text: text! };
      return ctx.service.answer(ctx.main, query, options, reply);
    },
  );
};
