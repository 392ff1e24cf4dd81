/**
 * The web page (web/ in the repository, built into dist/web by `npm run build`), served by
 * @fastify/static from the same process; it needs nothing from the network.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import { packageRoot } from '../util/package-root.js';

/** Where the built page is: dist/web of the package (the same from src/ under tsx and from dist/). */
export const defaultWebRoot = () => join(packageRoot(), 'dist', 'web');

export async function registerWeb(app: FastifyInstance, root: string): Promise<void> {
  if (!existsSync(join(root, 'index.html'))) {
    app.log.warn(`no web page at ${root} (run npm run build); the API is served alone`);
    app.get('/', { schema: { hide: true } }, async (_request, reply) =>
      reply.code(503).type('text/plain').send(`The web page is not built: run \`npm run build\` in the duo-search folder. The API is at /v1/, its description at /openapi.json.\n`),
    );
    return;
  }
  await app.register(fastifyStatic, { root, prefix: '/', index: ['index.html'], schemaHide: true, cacheControl: true, maxAge: '1h', immutable: false });
}
