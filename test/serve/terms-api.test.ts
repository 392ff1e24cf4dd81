/** POST /v1/search with weighted terms instead of text, and with expand, in-process (inject), over the colour collection. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/serve/app.js';
import type { SearchResponse } from '../../src/serve/schemas.js';
import { tempDir } from '../helpers.js';
import { colourCollection, openEngines, type Collection } from './fixture.js';

describe('API v1: weighted terms', () => {
  let c: Collection;
  let engines: Awaited<ReturnType<typeof openEngines>>;
  let app: FastifyInstance;
  const dir = tempDir('duo-serve-');
  before(async () => {
    c = await colourCollection(dir);
    engines = await openEngines(c);
    app = await buildApp({ engine: engines.engine, captions: engines.captions, cacheDir: join(tempDir(), 'thumbs'), webRoot: false });
  });
  after(async () => {
    await app.close();
    await engines.close();
  });
  const post = (payload: object) => app.inject({ method: 'POST', url: '/v1/search', payload });
  const ids = (r: SearchResponse) => r.results.map((h) => h.id);

  it('terms with a negative text and an item: the embedding moves away from red', async () => {
    const plain = await post({ text: 'yellow', k: 7 });
    assert.equal(plain.statusCode, 200, plain.body);
    assert.ok(ids(plain.json<SearchResponse>()).slice(0, 3).includes('warm/red.jpg'), 'yellow alone: red is near the top');
    const r = await post({ terms: [{ text: 'yellow' }, { text: 'red', weight: -1 }], k: 7 });
    assert.equal(r.statusCode, 200, r.body);
    const body = r.json<SearchResponse>();
    assert.equal(body.query, '"yellow" - "red"');
    assert.equal(ids(body)[0], 'cold/green.jpg');
    assert.deepEqual(ids(body).slice(-2).sort(), ['warm/red.jpg', 'warm/red2.jpg']);
    const withItem = await post({ terms: [{ item: 'warm/yellow.jpg', weight: 2 }, { text: 'red', weight: -1 }], k: 6, mode: 'hybrid' });
    assert.equal(withItem.statusCode, 200, withItem.body);
    assert.ok(!ids(withItem.json<SearchResponse>()).includes('warm/yellow.jpg'), 'the item term itself is left out');
    assert.match(withItem.json<SearchResponse>().fallback ?? '', /without a positive text term/);
  });

  it('validation names the field: terms.1.weight, text and terms together, neither, a term with both', async () => {
    const cases: [object, string][] = [
      [{ terms: [{ text: 'red' }, { text: 'blue', weight: 'x' }] }, 'terms.1.weight'],
      [{ text: 'red', terms: [{ text: 'blue' }] }, 'terms'],
      [{ k: 3 }, 'text'],
      [{ terms: [{ text: 'red', item: 'warm/red.jpg' }] }, 'terms.0.text'],
      [{ terms: [] }, 'terms'],
      [{ terms: [{ text: 'red', colour: 1 }] }, 'terms.0.colour'],
    ];
    for (const [payload, field] of cases) {
      const r = await post(payload);
      assert.equal(r.statusCode, 400, JSON.stringify(payload));
      assert.equal(r.json<{ error: { field: string } }>().error.field, field, `${JSON.stringify(payload)}: ${r.body}`);
    }
    const cancel = await post({ terms: [{ text: 'red' }, { text: 'red', weight: -1 }] });
    assert.equal(cancel.statusCode, 400);
    assert.equal(cancel.json<{ error: { field: string; message: string } }>().error.field, 'terms');
    assert.match(cancel.json<{ error: { message: string } }>().error.message, /zero/);
  });

  it('expression: the same query written out, parsed by the server as duo search parses it', async () => {
    const listed = (await post({ terms: [{ text: 'yellow' }, { text: 'red', weight: -1 }], k: 7 })).json<SearchResponse>();
    const written = await post({ expression: '"yellow" - "red"', k: 7 });
    assert.equal(written.statusCode, 200, written.body);
    assert.deepEqual(ids(written.json<SearchResponse>()), ids(listed));
    assert.equal(written.json<SearchResponse>().query, listed.query);
    const plain = (await post({ text: 'a yellow thing', k: 4 })).json<SearchResponse>();
    assert.deepEqual(ids((await post({ expression: 'a yellow thing', k: 4 })).json<SearchResponse>()), ids(plain), 'plain text is a plain query');
    // a phrase like a file name is text on the server: nothing is read
    const file = await post({ expression: '"red" + /etc/passwd.jpg', k: 3 });
    assert.equal(file.statusCode, 200, file.body);
    assert.equal(file.json<SearchResponse>().query, '"red" + "/etc/passwd.jpg"', 'a text term, not an image');
    const cases: [object, string][] = [
      [{ text: 'red', expression: 'blue' }, 'expression'],
      [{ expression: Array.from({ length: 17 }, (_, i) => `"w${i}"`).join(' + ') }, 'expression'],
      [{ expression: '"yellow" - "red' }, 'expression'],
    ];
    for (const [payload, field] of cases) {
      const r = await post(payload);
      assert.equal(r.statusCode, 400, JSON.stringify(payload));
      assert.equal(r.json<{ error: { field: string } }>().error.field, field, `${JSON.stringify(payload)}: ${r.body}`);
    }
  });

  it('expand: the engine option through the API (the package table), validated under its name', async () => {
    const plain = await post({ text: 'red', k: 3 });
    const expanded = await post({ text: 'red', k: 3, expand: true, expandSynonym: 1 });
    assert.equal(expanded.statusCode, 200, expanded.body);
    assert.equal(ids(expanded.json<SearchResponse>())[0]!.startsWith('warm/red'), true);
    assert.notEqual(expanded.json<SearchResponse>().results[0]!.score, plain.json<SearchResponse>().results[0]!.score);
    const bad = await post({ text: 'red', expand: true, expandCaption: 2 });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json<{ error: { field: string } }>().error.field, 'expandCaption');
  });

  it('the OpenAPI document shows terms beside text', async () => {
    const doc = (await app.inject({ url: '/openapi.json' })).json<{ paths: Record<string, { post: { requestBody: { content: Record<string, { schema: { properties: Record<string, { type?: string; maxItems?: number; items?: { properties: Record<string, unknown> } }> } }> } } }> }>();
    const body = doc.paths['/v1/search']!.post.requestBody.content['application/json']!.schema;
    assert.equal(body.properties.terms!.type, 'array');
    assert.equal(body.properties.terms!.maxItems, 16);
    assert.deepEqual(Object.keys(body.properties.terms!.items!.properties).sort(), ['item', 'text', 'weight']);
    assert.ok('text' in body.properties);
  });
});
