/** Every route of API v1, in-process (inject), over the colour collection. */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import sharp from 'sharp';
import { buildApp } from '../../src/serve/app.js';
import type { SearchResponse } from '../../src/serve/schemas.js';
import { tempDir } from '../helpers.js';
import { colourCollection, multipart, openEngines, type Collection } from './fixture.js';

describe('API v1', () => {
  let c: Collection;
  let engines: Awaited<ReturnType<typeof openEngines>>;
  let app: FastifyInstance;
  const dir = tempDir('duo-serve-');
  const cacheDir = join(tempDir(), 'thumbs');
  before(async () => {
    c = await colourCollection(dir);
    engines = await openEngines(c);
    app = await buildApp({ engine: engines.engine, captions: engines.captions, cacheDir, webRoot: false });
  });
  after(async () => {
    await app.close();
    await engines.close();
  });
  const search = async (payload: object) => {
    const r = await app.inject({ method: 'POST', url: '/v1/search', payload });
    assert.equal(r.statusCode, 200, r.body);
    return r.json<SearchResponse>();
  };

  it('POST /v1/search: text → images, stage 1, with thumbnails and per-stage latency', async () => {
    const r = await search({ text: 'red', k: 3 });
    assert.equal(r.mode, 'stage1');
    assert.equal(r.query, 'red');
    assert.deepEqual(r.results.map((h) => h.id).slice(0, 2).sort(), ['warm/red.jpg', 'warm/red2.jpg']);
    const top = r.results[0]!;
    assert.deepEqual(Object.keys(top).sort(), ['id', 'imageUrl', 'metadata', 'rank', 'score', 'stage1', 'thumbnailUrl']);
    assert.equal(top.rank, 1);
    assert.equal(top.thumbnailUrl, `/v1/images/${encodeURIComponent(top.id)}/thumbnail?size=256`);
    assert.equal(typeof top.metadata.bytes, 'number');
    assert.equal(top.stage2, undefined);
    assert.ok(r.latencyMs.encode > 0 && r.latencyMs.stage1 > 0 && r.latencyMs.stage2 === 0);
    assert.deepEqual(r.next, { offset: 3 });
    assert.ok(!('path' in top), 'no server path is given out');
  });

  it('POST /v1/search: hybrid with both stages explained, every engine option accepted', async () => {
    const r = await search({ text: 'a blue photo', mode: 'hybrid', k: 3, k1: 7, fusion: 'rrf', rrfK: 10, normalisation: 'minmax', mmr: 1, budgetMs: 5000, explain: true });
    assert.equal(r.mode, 'hybrid');
    assert.equal(r.fallback, undefined);
    assert.equal(r.results[0]!.id, 'cold/blue.jpg');
    assert.ok(r.results.every((h) => h.stage2 && h.stage1));
    assert.ok(r.latencyMs.stage2 > 0);
    assert.equal(r.explain!.options.fusion, 'rrf');
    assert.equal(r.explain!.options.k1, 7);
    assert.equal(r.explain!.items, 7);
    assert.equal(r.explain!.reranker, engines.engine.reranker!.id);
    const weighted = await search({ text: 'a blue photo', mode: 'hybrid', k: 2, alpha: 0.25, where: { id: { prefix: 'cold/' } } });
    assert.ok(weighted.results.every((h) => h.id.startsWith('cold/')));
  });

  it('pages with offset, and a repeated query is answered from the cache', async () => {
    const all = await search({ text: 'green', k: 6 });
    const page2 = await search({ text: 'green', k: 2, offset: 2 });
    assert.deepEqual(page2.results.map((h) => [h.rank, h.id]), all.results.slice(2, 4).map((h) => [h.rank, h.id]));
    assert.equal(page2.offset, 2);
    assert.deepEqual(page2.next, { offset: 4 });
    const again = await search({ text: 'green', k: 2, offset: 2 });
    assert.equal(again.cached, true);
    const last = await search({ text: 'green', k: 5, offset: 5 });
    assert.equal(last.results.length, 2);
    assert.equal(last.next, undefined, 'no next page after a short one');
  });

  it('POST /v1/search/image: an uploaded image → similar images (stage 1, marked in hybrid)', async () => {
    const image = readFileSync(join(c.root, 'cold', 'blue.jpg'));
    const r = await app.inject({ method: 'POST', url: '/v1/search/image', ...multipart({ k: '2' }, [['image', image]]) });
    assert.equal(r.statusCode, 200, r.body);
    const body = r.json<SearchResponse>();
    assert.equal(body.results[0]!.id, 'cold/blue.jpg');
    assert.equal(body.results.length, 2);
    const hybrid = await app.inject({ method: 'POST', url: '/v1/search/image', ...multipart({ mode: 'hybrid', k: '2', where: '{"id":{"prefix":"cold/"}}' }, [['image', image]]) });
    assert.equal(hybrid.statusCode, 200, hybrid.body);
    assert.match(hybrid.json<SearchResponse>().fallback!, /image→image/);
    assert.ok(hybrid.json<SearchResponse>().results.every((h) => h.id.startsWith('cold/')));
  });

  it('POST /v1/captions/search: an image → captions, reranked in hybrid', async () => {
    const image = readFileSync(join(c.root, 'warm', 'yellow.jpg'));
    const r = await app.inject({ method: 'POST', url: '/v1/captions/search', ...multipart({ mode: 'hybrid', k: '3', k1: '6' }, [['image', image]]) });
    assert.equal(r.statusCode, 200, r.body);
    const body = r.json<SearchResponse>();
    assert.equal(body.results[0]!.text, 'a yellow photo');
    assert.equal(body.fallback, undefined);
    assert.ok(body.results.every((h) => h.stage2 !== undefined && h.thumbnailUrl === undefined));
    // a server without a caption index says so
    const plain = await buildApp({ engine: engines.engine, cacheDir, webRoot: false });
    const none = await plain.inject({ method: 'POST', url: '/v1/captions/search', ...multipart({}, [['image', image]]) });
    assert.equal(none.statusCode, 404);
    assert.equal(none.json().error.code, 'NOT_CONFIGURED');
    await plain.close();
  });

  it('GET /v1/items/{id} and /v1/items/{id}/similar: more like an indexed item, itself left out', async () => {
    const item = await app.inject({ method: 'GET', url: '/v1/items/warm%2Fred.jpg' });
    assert.equal(item.statusCode, 200, item.body);
    assert.equal(item.json().id, 'warm/red.jpg');
    const r = await app.inject({ method: 'GET', url: '/v1/items/warm%2Fred.jpg/similar?k=3&explain=true' });
    assert.equal(r.statusCode, 200, r.body);
    const body = r.json<SearchResponse>();
    assert.equal(body.results[0]!.id, 'warm/red2.jpg');
    assert.ok(body.results.every((h) => h.id !== 'warm/red.jpg'));
    assert.equal(body.explain!.options.k, 3);
    const cold = await app.inject({ method: 'GET', url: `/v1/items/warm%2Fred.jpg/similar?k=10&offset=1&where=${encodeURIComponent('{"id":{"prefix":"cold/"}}')}` });
    assert.deepEqual(cold.json<SearchResponse>().results.map((h) => h.rank), [2, 3]);
    const missing = await app.inject({ method: 'GET', url: '/v1/items/nope.jpg/similar' });
    assert.equal(missing.statusCode, 404);
    assert.deepEqual(missing.json(), { error: { code: 'ITEM_NOT_FOUND', message: 'no item nope.jpg in this index', field: 'id' } });
  });

  it('GET /v1/images/{id}: the original file, by id, with an ETag', async () => {
    const r = await app.inject({ method: 'GET', url: '/v1/images/cold%2Fgreen.jpg' });
    assert.equal(r.statusCode, 200);
    assert.equal(r.headers['content-type'], 'image/jpeg');
    assert.deepEqual(r.rawPayload, readFileSync(join(c.root, 'cold', 'green.jpg')));
    const again = await app.inject({ method: 'GET', url: '/v1/images/cold%2Fgreen.jpg', headers: { 'if-none-match': String(r.headers.etag) } });
    assert.equal(again.statusCode, 304);
  });

  it('GET /v1/images/{id}/thumbnail: sharp WebP at an allowed size, cached on disk', async () => {
    const r = await app.inject({ method: 'GET', url: '/v1/images/cold%2Fgreen.jpg/thumbnail?size=128' });
    assert.equal(r.statusCode, 200, r.body);
    assert.equal(r.headers['content-type'], 'image/webp');
    const meta = await sharp(r.rawPayload).metadata();
    assert.equal(meta.format, 'webp');
    assert.equal(meta.width, 96, 'never enlarged past the original');
    const files = readdirSync(cacheDir, { recursive: true }).filter((f) => String(f).endsWith('.webp'));
    assert.equal(files.length, 1);
    const cached = join(cacheDir, String(files[0]));
    const before = statSync(cached).mtimeMs;
    const second = await app.inject({ method: 'GET', url: '/v1/images/cold%2Fgreen.jpg/thumbnail?size=128' });
    assert.deepEqual(second.rawPayload, r.rawPayload);
    assert.equal(statSync(cached).mtimeMs, before, 'served from the disk cache, not rendered again');
    const byDefault = await app.inject({ method: 'GET', url: '/v1/images/cold%2Fgreen.jpg/thumbnail' });
    assert.equal(byDefault.statusCode, 200);
    const odd = await app.inject({ method: 'GET', url: '/v1/images/cold%2Fgreen.jpg/thumbnail?size=100' });
    assert.equal(odd.statusCode, 400);
    assert.equal(odd.json().error.field, 'size');
  });

  it('never turns a client string into a path: only ids the index holds are served', async () => {
    for (const id of ['..%2F..%2F..%2Fetc%2Fpasswd', '%2Fetc%2Fpasswd', 'warm%2F..%2F..%2Fphotos.duo%2Fmanifest.json', 'cold', 'warm%2Fred.jpg%00']) {
      for (const url of [`/v1/images/${id}`, `/v1/images/${id}/thumbnail`]) {
        const r = await app.inject({ method: 'GET', url });
        assert.equal(r.statusCode, 404, `${url}: ${r.body}`);
        assert.equal(r.json().error.code, 'ITEM_NOT_FOUND');
        assert.ok(!r.body.includes(c.root), 'no server path in the message');
      }
    }
  });

  it('GET /v1/health, /v1/ready, /v1/collection', async () => {
    assert.deepEqual((await app.inject({ url: '/v1/health' })).json(), { status: 'ok' });
    assert.deepEqual((await app.inject({ url: '/v1/ready' })).json(), { status: 'ready' });
    let warm = false;
    const cold = await buildApp({ engine: engines.engine, cacheDir, webRoot: false, warm: () => warm });
    const notYet = await cold.inject({ url: '/v1/ready' });
    assert.equal(notYet.statusCode, 503);
    assert.equal(notYet.json().error.code, 'NOT_READY');
    warm = true;
    assert.equal((await cold.inject({ url: '/v1/ready' })).statusCode, 200);
    await cold.close();
    const collection = (await app.inject({ url: '/v1/collection' })).json();
    assert.equal(collection.items, 7);
    assert.equal(collection.kind, 'images');
    assert.equal(collection.captions, true);
    const folders = collection.facets.filter((f: { key: string }) => f.key === 'folder');
    assert.deepEqual(folders.map((f: { label: string; count: number }) => [f.label, f.count]), [['warm', 4], ['cold', 3]]);
    assert.deepEqual(folders[0].where, { id: { prefix: 'warm/' } });
    // a chip's filter goes back unchanged as `where`
    const warmOnly = await search({ text: 'blue', k: 10, where: folders[0].where });
    assert.equal(warmOnly.results.length, 4);
    const sizes = collection.facets.filter((f: { key: string }) => f.key === 'size');
    assert.equal(sizes.reduce((n: number, f: { count: number }) => n + f.count, 0), 7, 'size chips cover the collection once');
    assert.equal(collection.limits.maxK, 100);
  });

  it('GET /metrics: requests by route and status, stage latency, cache hits, queue depth', async () => {
    await search({ text: 'white', k: 1, mode: 'hybrid' });
    await search({ text: 'white', k: 1, mode: 'hybrid' });
    await app.inject({ method: 'POST', url: '/v1/search', payload: { text: 'white', k: 0 } });
    const r = await app.inject({ url: '/metrics' });
    assert.equal(r.statusCode, 200);
    assert.match(r.headers['content-type'] as string, /text\/plain/);
    const text = r.body;
    assert.match(text, /duo_http_requests_total\{method="POST",route="\/v1\/search",status="200"\} \d+/);
    assert.match(text, /duo_http_requests_total\{method="POST",route="\/v1\/search",status="400"\} [1-9]/);
    assert.match(text, /duo_search_stage_seconds_count\{index="main",mode="hybrid",stage="stage2"\} [1-9]/);
    assert.match(text, /duo_search_stage_seconds_count\{index="main",mode="hybrid",stage="queue"\} [1-9]/);
    assert.match(text, /duo_cache_hits_total\{index="main",cache="responses"\} [1-9]/);
    assert.match(text, /duo_queue_depth 0/);
    assert.match(text, /duo_search_batched_queries_total [1-9]/);
    assert.match(text, /duo_stage2_rows_total\{source="miss"\} 0/, 'no row cache in front of this store');
    assert.match(text, /duo_http_request_duration_seconds_bucket/);
    assert.match(text, /duo_process_cpu_seconds_total/);
  });

  it('an unknown route is a 404 in the one error shape', async () => {
    const r = await app.inject({ url: '/v2/search' });
    assert.equal(r.statusCode, 404);
    assert.deepEqual(r.json(), { error: { code: 'NOT_FOUND', message: 'no route GET /v2/search' } });
    assert.ok(existsSync(cacheDir));
  });
});
