/** GET /v1/images/{id} and GET /v1/images/{id}/thumbnail?size=N: by id only, never by path. */
import { createReadStream } from 'node:fs';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { ServeContext } from '../context.js';
import { exists } from '../images.js';
import { binaryBody, errors, itemParamsSchema, notModified, thumbnailQuerySchema } from '../schemas.js';

export const imageRoutes: FastifyPluginAsyncZod<{ ctx: ServeContext }> = async (app, { ctx }) => {
  app.get(
    '/v1/images/:id',
    {
      schema: { summary: 'An indexed image', tags: ['images'], params: itemParamsSchema, response: { 200: binaryBody('image/*', 'the original file'), 304: notModified, ...errors(400, 404) } },
      config: { queryField: 'id' },
    },
    async (request, reply) => {
      const file = await ctx.files.file(request.params.id);
      const size = await exists(file.path);
      const etag = `"${file.version}"`;
      void reply.header('etag', etag).header('cache-control', 'private, max-age=3600');
      if (request.headers['if-none-match'] === etag) return reply.code(304).send();
      return reply.type(file.contentType).header('content-length', size).send(createReadStream(file.path));
    },
  );
  app.get(
    '/v1/images/:id/thumbnail',
    {
      schema: {
        summary: 'A thumbnail of an indexed image',
        description: 'WebP, longest edge `size` (never enlarged), rendered once and cached on disk.',
        tags: ['images'],
        params: itemParamsSchema,
        querystring: thumbnailQuerySchema,
        response: { 200: binaryBody('image/webp', 'the thumbnail'), 304: notModified, ...errors(400, 404) },
      },
      config: { queryField: 'id' },
    },
    async (request, reply) => {
      const { data, version } = await ctx.files.thumbnail(request.params.id, Number(request.query.size));
      const etag = `"${version}"`;
      void reply.header('etag', etag).header('cache-control', 'private, max-age=86400');
      if (request.headers['if-none-match'] === etag) return reply.code(304).send();
      return reply.type('image/webp').send(data);
    },
  );
};
