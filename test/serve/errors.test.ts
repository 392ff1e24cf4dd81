/** One error shape, a 4xx naming the field for every bad input, and the server's own limits. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import sharp from 'sharp';
import { DuoError, type ErrorCode } from '../../src/errors.js';
import { SearchEngine } from '../../src/search/engine.js';
import { buildApp } from '../../src/serve/app.js';
import { httpStatusFor, toErrorReply } from '../../src/serve/errors.js';
import { DEFAULT_LIMITS } from '../../src/serve/limits.js';
import { COLOURS, tempDir, wrapEncoder } from '../helpers.js';
import { colourCollection, multipart, openEngines, type Collection } from './fixture.js';

/** asserts the one error shape and returns it */
function errorOf(r: LightMyRequestResponse, status: number, code: string, field?: string) {
  assert.equal(r.statusCode, status, r.body);
  const body = r.json() as { error: { code: string; message: string; field?: string } };
  assert.deepEqual(Object.keys(body), ['error']);
  assert.equal(body.error.code, code, r.body);
  assert.equal(typeof body.error.message, 'string');
  if (field !== undefined) assert.equal(body.error.field, field, r.body);
  return body.error;
}

describe('errors and limits', () => {
  let c: Collection;
  let engines: Awaited<ReturnType<typeof openEngines>>;
  let app: FastifyInstance;
  const dir = tempDir('duo-serve-');
  const cacheDir = tempDir();
  before(async () => {
    c = await colourCollection(dir);
    engines = await openEngines(c);
    app = await buildApp({ engine: engines.engine, captions: engines.captions, cacheDir, webRoot: false, limits: { maxK: 20, maxK1: 50, maxQueryChars: 40, bodyLimitBytes: 4096, uploadLimitBytes: 64 << 10, maxImagePixels: 200 * 200, maxOffset: 100 } });
  });
  after(async () => {
    await app.close();
    await engines.close();
  });
  const post = (payload: unknown, headers: Record<string, string> = {}) => app.inject({ method: 'POST', url: '/v1/search', payload: payload as string, headers });

  it('caps k, k1, offset, budget and query length below the engine’s wide limits, naming the field', async () => {
    assert.match(errorOf(await post({ text: 'red', k: 21 }), 400, 'BAD_ARGUMENT', 'k').message, /^k: Too big: expected number to be <=20/);
    errorOf(await post({ text: 'red', k1: 51, mode: 'hybrid' }), 400, 'BAD_ARGUMENT', 'k1');
    errorOf(await post({ text: 'red', offset: 101 }), 400, 'BAD_ARGUMENT', 'offset');
    errorOf(await post({ text: 'red', budgetMs: DEFAULT_LIMITS.requestBudgetMs + 1 }), 400, 'BAD_ARGUMENT', 'budgetMs');
    errorOf(await post({ text: 'r'.repeat(41) }), 400, 'BAD_ARGUMENT', 'text');
    assert.equal((await post({ text: 'red', k: 20, k1: 50, offset: 100 })).statusCode, 200);
  });

  it('bad JSON bodies: types, unknown keys, filters, empty text, missing text, not JSON, too large', async () => {
    errorOf(await post({ text: 'red', k: 'ten' }), 400, 'BAD_ARGUMENT', 'k');
    errorOf(await post({ text: 'red', k: 2.5 }), 400, 'BAD_ARGUMENT', 'k');
    errorOf(await post({ text: 'red', mode: 'fast' }), 400, 'BAD_ARGUMENT', 'mode');
    errorOf(await post({ text: 'red', alpha: 2 }), 400, 'BAD_ARGUMENT', 'alpha');
    errorOf(await post({ text: 'red', mmr: 0 }), 400, 'BAD_ARGUMENT', 'mmr');
    errorOf(await post({ text: 'red', fusion: 'max' }), 400, 'BAD_ARGUMENT', 'fusion');
    errorOf(await post({ text: 'red', rerankBatchSize: 1 }), 400, 'BAD_ARGUMENT', 'rerankBatchSize');
    assert.equal(errorOf(await post({ text: 'red', colour: 'red' }), 400, 'BAD_ARGUMENT', 'colour').message, 'colour: unknown key');
    errorOf(await post({ text: 'red', where: { bytes: { between: [1, 2] } } }), 400, 'BAD_ARGUMENT', 'where.bytes.between');
    errorOf(await post({ text: 'red', where: { modified: { gte: 'yesterday' } } }), 400, 'BAD_ARGUMENT');
    errorOf(await post({ text: 'red', where: { album: { in: [] } } }), 400, 'BAD_ARGUMENT');
    errorOf(await post({ text: '   ' }), 400, 'BAD_ARGUMENT', 'text');
    errorOf(await post({ k: 3 }), 400, 'BAD_ARGUMENT', 'text');
    errorOf(await post({ text: 42 }), 400, 'BAD_ARGUMENT', 'text');
    errorOf(await post('{"text": "red",', { 'content-type': 'application/json' }), 400, 'BAD_ARGUMENT', 'body');
    errorOf(await post('[1, 2]', { 'content-type': 'application/json' }), 400, 'BAD_ARGUMENT');
    errorOf(await post('', { 'content-type': 'application/json' }), 400, 'BAD_ARGUMENT', 'body');
    errorOf(await post('text=red', { 'content-type': 'application/x-www-form-urlencoded' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
    errorOf(await post({ text: 'red '.repeat(1200) }), 413, 'PAYLOAD_TOO_LARGE', 'body');
  });

  it('hybrid needs a cross-encoder, and on a caption index an image', async () => {
    const stage1Only = new SearchEngine({ store: engines.engine.store, encoder: engines.engine.encoder });
    const bare = await buildApp({ engine: stage1Only, cacheDir, webRoot: false });
    errorOf(await bare.inject({ method: 'POST', url: '/v1/search', payload: { text: 'red', mode: 'hybrid' } }), 400, 'BAD_ARGUMENT', 'mode');
    await bare.close();
    const captions = await buildApp({ engine: engines.captions, cacheDir, webRoot: false });
    errorOf(await captions.inject({ method: 'POST', url: '/v1/search', payload: { text: 'red', mode: 'hybrid' } }), 400, 'BAD_ARGUMENT', 'mode');
    const ok = await captions.inject({ method: 'POST', url: '/v1/search', payload: { text: 'red', k: 1 } });
    assert.equal(ok.json().results[0].text, 'a red photo', 'text → captions in stage 1');
    errorOf(await captions.inject({ url: '/v1/images/c1' }), 404, 'ITEM_NOT_FOUND', 'id');
    await captions.close();
  });

  it('a query with no word the model knows is a 422 naming text', async () => {
    const e = engines.engine.encoder;
    const picky = wrapEncoder(e, {
      textCoverage: (t) => ({ known: t.split(' ').filter((w) => w in COLOURS), unknown: t.split(' ').filter((w) => !(w in COLOURS)) }),
    });
    const strict = await buildApp({ engine: new SearchEngine({ store: engines.engine.store, encoder: picky }), cacheDir, webRoot: false });
    const error = errorOf(await strict.inject({ method: 'POST', url: '/v1/search', payload: { text: 'zebra quagga' } }), 422, 'QUERY_NOT_UNDERSTOOD', 'text');
    assert.match(error.message, /zebra, quagga/);
    await strict.close();
  });

  it('uploads: not multipart, no image, another file field, too many bytes, too many pixels, not an image, bad fields', async () => {
    const image = readFileSync(join(c.root, 'cold', 'blue.jpg'));
    const upload = (fields: Record<string, string>, files: [string, Buffer, string?, string?][]) => app.inject({ method: 'POST', url: '/v1/search/image', ...multipart(fields, files) });
    errorOf(await app.inject({ method: 'POST', url: '/v1/search/image', payload: { image: 'x' } }), 415, 'UNSUPPORTED_MEDIA_TYPE', 'image');
    errorOf(await upload({ k: '2' }, []), 400, 'BAD_ARGUMENT', 'image');
    errorOf(await upload({}, [['photo', image]]), 400, 'BAD_ARGUMENT', 'photo');
    errorOf(await upload({}, [['image', Buffer.alloc(65 << 10, 1)]]), 413, 'PAYLOAD_TOO_LARGE', 'image');
    const big = await sharp({ create: { width: 300, height: 300, channels: 3, background: '#00f' } }).png().toBuffer();
    errorOf(await upload({}, [['image', big, 'big.png', 'image/png']]), 413, 'IMAGE_TOO_LARGE', 'image');
    const notImage = errorOf(await upload({}, [['image', Buffer.from('hello, I am text'), 'a.jpg']]), 422, 'BAD_IMAGE', 'image');
    assert.ok(!notImage.message.includes('/tmp'), notImage.message);
    errorOf(await upload({ k: 'many' }, [['image', image]]), 400, 'BAD_ARGUMENT', 'k');
    errorOf(await upload({ k: '21' }, [['image', image]]), 400, 'BAD_ARGUMENT', 'k');
    errorOf(await upload({ where: '{nope' }, [['image', image]]), 400, 'BAD_ARGUMENT', 'where');
    errorOf(await upload({ where: '{"bytes":{"near":1}}' }, [['image', image]]), 400, 'BAD_ARGUMENT', 'where.bytes.near');
    errorOf(await upload({ colour: 'blue' }, [['image', image]]), 400, 'BAD_ARGUMENT', 'colour');
    assert.equal((await upload({ k: '1', explain: 'true' }, [['image', image]])).statusCode, 200);
  });

  it('query strings: similar and thumbnail parameters are checked by name', async () => {
    errorOf(await app.inject({ url: '/v1/items/warm%2Fred.jpg/similar?k=0' }), 400, 'BAD_ARGUMENT', 'k');
    errorOf(await app.inject({ url: '/v1/items/warm%2Fred.jpg/similar?k=abc' }), 400, 'BAD_ARGUMENT', 'k');
    errorOf(await app.inject({ url: '/v1/items/warm%2Fred.jpg/similar?k=21' }), 400, 'BAD_ARGUMENT', 'k');
    errorOf(await app.inject({ url: '/v1/items/warm%2Fred.jpg/similar?mode=hybrid' }), 400, 'BAD_ARGUMENT', 'mode');
    errorOf(await app.inject({ url: '/v1/items/warm%2Fred.jpg/similar?where=%7Bx' }), 400, 'BAD_ARGUMENT', 'where');
    errorOf(await app.inject({ url: `/v1/items/warm%2Fred.jpg/similar?where=${encodeURIComponent('{"x":{"in":[]}}')}` }), 400, 'BAD_ARGUMENT', 'where.x');
    errorOf(await app.inject({ url: '/v1/images/warm%2Fred.jpg/thumbnail?size=4096' }), 400, 'BAD_ARGUMENT', 'size');
    errorOf(await app.inject({ url: '/v1/images/warm%2Fred.jpg/thumbnail?size=256&x=1' }), 400, 'BAD_ARGUMENT', 'x');
  });

  it('never a 5xx for bad input: a battery of malformed requests', async () => {
    const bodies: unknown[] = [null, 0, 'text', [], { text: null }, { text: ['red'] }, { text: 'red', where: [] }, { text: 'red', where: 'x' }, { text: 'red', where: { '': 1 } },
      { text: 'red', where: { a: { in: [{}] } } }, { text: 'red', where: { a: null } }, { text: 'red', k: -1 }, { text: 'red', k: 1e308 }, { text: 'red', offset: -5 }, { text: 'red', budgetMs: 0 },
      { text: 'red', alpha: 'NaN' }, { text: 'red', rrfK: -1 }, { text: 'red', normalisation: 'z' }, { text: 'red', explain: 'yes' }, { text: '\u0000' }, { text: 'red', __proto__: { k: 1 } },
      { text: 'red', constructor: { prototype: {} } }];
    for (const payload of bodies) {
      const r = await app.inject({ method: 'POST', url: '/v1/search', payload: JSON.stringify(payload), headers: { 'content-type': 'application/json' } });
      assert.ok(r.statusCode < 500, `${JSON.stringify(payload)} → ${r.statusCode} ${r.body}`);
      if (r.statusCode >= 400) assert.ok(r.json().error.code, r.body);
    }
    for (const url of ['/v1/items/%E0%A4%A/similar', '/v1/images/%', '/v1/items//similar', `/v1/items/${'x'.repeat(5000)}/similar`, '/v1/search?x=1']) {
      const r = await app.inject({ url });
      assert.ok(r.statusCode >= 400 && r.statusCode < 500, `${url.slice(0, 60)} → ${r.statusCode} ${r.body}`);
    }
  });

  it('maps the shared error codes to HTTP statuses; server faults say nothing of the server', () => {
    const statuses: Partial<Record<ErrorCode, number>> = { BAD_ARGUMENT: 400, QUERY_NOT_UNDERSTOOD: 422, BAD_IMAGE: 422, IMAGE_TOO_LARGE: 413, ITEM_NOT_FOUND: 404, FILE_NOT_FOUND: 404, INDEX_LOCKED: 503, INDEX_CORRUPT: 500, MODEL_OUTPUT: 500 };
    for (const [code, status] of Object.entries(statuses)) assert.equal(httpStatusFor(code as ErrorCode), status, code);
    const internal = toErrorReply(new DuoError('INDEX_CORRUPT', 'index /srv/photos.duo is corrupt: bad segment'));
    assert.deepEqual(internal, { status: 500, body: { error: { code: 'INDEX_CORRUPT', message: 'internal error: the server logged it' } }, headers: {} });
    assert.equal(toErrorReply(new TypeError('x is undefined')).body.error.code, 'INTERNAL');
  });
});
