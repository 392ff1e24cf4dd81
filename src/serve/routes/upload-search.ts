/**
 * POST /v1/search/image (image → images, or → captions on a caption index) and
 * POST /v1/captions/search (image → captions of the --captions index): multipart uploads.
 */
import type { FastifySchemaCompiler } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { ServeContext } from '../context.js';
import { ApiError } from '../errors.js';
import { errors, searchResponseSchema, uploadSchema } from '../schemas.js';
import { readUpload } from '../upload.js';

/** The multipart body is read and validated in the handler (./upload.ts); its schema documents it. */
const documentedOnly: FastifySchemaCompiler<unknown> = () => (data) => ({ value: data });

export const uploadSearchRoutes: FastifyPluginAsyncZod<{ ctx: ServeContext }> = async (app, { ctx }) => {
  const schema = (summary: string, description: string) => ({
    summary,
    description,
    tags: ['search'],
    consumes: ['multipart/form-data'],
    body: uploadSchema(ctx.limits),
    response: { 200: searchResponseSchema, ...errors(400, 404, 413, 415, 422, 503) },
  });
  app.post(
    '/v1/search/image',
    {
      schema: schema('Search by image', 'An uploaded image → the most similar images (image→image is stage 1: the cross-encoder scores image–text pairs), or → captions when the index holds captions.'),
      validatorCompiler: documentedOnly,
      config: { queryField: 'image' },
    },
    async (request, reply) => {
      const { image, options } = await readUpload(request, ctx.limits);
      return ctx.service.answer(ctx.main, { image }, options, reply);
    },
  );
  app.post(
    '/v1/captions/search',
    {
      schema: schema('Captions for an image', 'An uploaded image → the captions of the caption index (--captions) that describe it; mode hybrid rescores them with the cross-encoder.'),
      validatorCompiler: documentedOnly,
      config: { queryField: 'image' },
    },
    async (request, reply) => {
      if (!ctx.captions) throw new ApiError(404, 'NOT_CONFIGURED', 'this server has no caption index: start it with --captions <index>');
      const { image, options } = await readUpload(request, ctx.limits);
      return ctx.service.answer(ctx.captions, { image }, options, reply);
    },
  );
};
