/** POST /v1/search: text → items, with every engine option. */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Query } from '../../search/engine.js';
import { parseQueryExpression } from '../../search/query-terms.js';
import { createError } from '../../errors.js';
import type { ServeContext } from '../context.js';
import { errors, searchResponseSchema, textSearchSchema } from '../schemas.js';

/**
 * An expression through the CLI's parser, without image files: `isImage` is left unset, so
 * every phrase is text and no path on the server is ever read (checked again here, so a change
 * to the parser's default cannot open that door).
 */
function expressionQuery(expression: string): Query {
  const parsed = parseQueryExpression(expression, { field: 'expression' });
  if ('image' in parsed || ('terms' in parsed && parsed.terms.some((t) => 'image' in t))) throw createError('BAD_ARGUMENT', 'expression', 'image files cannot be named in an API query; upload the image to /v1/search/image');
  return parsed as Query;
}

export const searchRoutes: FastifyPluginAsyncZod<{ ctx: ServeContext }> = async (app, { ctx }) => {
  app.post(
    '/v1/search',
    {
      schema: {
        summary: 'Search by text',
        description: 'Text (or weighted terms: texts and indexed items, some negative, given as a list or written out as an expression) → images (or captions, on a caption index). mode hybrid rescores the top k1 with the cross-encoder; results carry both stages’ scores and ranks.',
        tags: ['search'],
        body: textSearchSchema(ctx.limits),
        response: { 200: searchResponseSchema, ...errors(400, 413, 415, 422, 503) },
      },
      config: { queryField: 'text' },
    },
    async (request, reply) => {
      const { text, terms, expression, ...options } = request.body;
      const query: Query =
        expression !== undefined
          ? expressionQuery(expression)
          : terms
            ? { terms: terms.map((t) => (t.text !== undefined ? { weight: t.weight, text: t.text } : { weight: t.weight, item: t.item! })) }
            : { text: text! };
      return ctx.service.answer(ctx.main, query, options, reply);
    },
  );
};
