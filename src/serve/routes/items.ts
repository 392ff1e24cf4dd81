/** GET /v1/items/{id} and GET /v1/items/{id}/similar ("more like this": the item's stored vector). */
import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { createError } from '../../errors.js';
import { filterSchema } from '../../index/filter.js';
import { issueError } from '../../search/options.js';
import type { ServeContext } from '../context.js';
import { errors, itemParamsSchema, optionsSchema, searchResponseSchema, similarQuerySchema } from '../schemas.js';
import { imageUrl, thumbnailUrl } from '../search-service.js';

const itemSchema = z
  .object({
    id: z.string(),
    text: z.string().optional(),
    metadata: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])),
    thumbnailUrl: z.string().optional(),
    imageUrl: z.string().optional(),
  })
  .meta({ id: 'Item' });

/** `where` of a query string: JSON text, checked by the filter schema, errors naming where.… */
function parseWhereParam(text: string | undefined) {
  if (text === undefined) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw createError('BAD_ARGUMENT', 'where', 'is not valid JSON');
  }
  const result = filterSchema.safeParse(raw);
  if (!result.success) throw issueError(result.error, (f) => `where.${f}`);
  return result.data;
}

export const itemRoutes: FastifyPluginAsyncZod<{ ctx: ServeContext }> = async (app, { ctx }) => {
  app.get(
    '/v1/items/:id',
    {
      schema: { summary: 'One indexed item', tags: ['items'], params: itemParamsSchema, response: { 200: itemSchema, ...errors(400, 404) } },
      config: { queryField: 'id' },
    },
    async (request) => {
      const { id } = request.params;
      const { engine } = ctx.main;
      const [item] = await engine.store.get([id]);
      if (!item) throw createError('ITEM_NOT_FOUND', id, 'the index');
      const images = !engine.captions;
      return {
        id,
        ...(images ? { thumbnailUrl: thumbnailUrl(id), imageUrl: imageUrl(id) } : { text: String(item.metadata.text ?? '') }),
        metadata: item.metadata,
      };
    },
  );
  app.get(
    '/v1/items/:id/similar',
    {
      schema: {
        summary: 'More like this',
        description: 'The items nearest an indexed item, by its stored vector (stage 1; the item itself is left out).',
        tags: ['search'],
        params: itemParamsSchema,
        querystring: similarQuerySchema(ctx.limits),
        response: { 200: searchResponseSchema, ...errors(400, 404, 503) },
      },
      config: { queryField: 'id' },
    },
    async (request, reply) => {
      const { where, explain, ...numbers } = request.query;
      const options = optionsSchema(ctx.limits).parse({ ...numbers, where: parseWhereParam(where), explain: explain === 'true' });
      return ctx.service.answer(ctx.main, { item: request.params.id }, options, reply);
    },
  );
};
