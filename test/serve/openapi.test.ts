/** GET /openapi.json: a valid OpenAPI 3.1 document, generated from the schemas that validate requests, and true to the responses. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/serve/app.js';
import { tempDir } from '../helpers.js';
import { colourCollection, multipart, openEngines, type Collection } from './fixture.js';
import { schemaProblems, validate } from './json-schema.js';

type Doc = {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, Operation>>;
  components?: { schemas?: Record<string, unknown> };
};
type Operation = {
  parameters?: { name: string; in: string; required?: boolean; schema: unknown }[];
  requestBody?: { content: Record<string, { schema: unknown }> };
  responses: Record<string, { description: string; content?: Record<string, { schema: unknown }> }>;
};
const METHODS = new Set(['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace']);

describe('OpenAPI document', () => {
  let c: Collection;
  let engines: Awaited<ReturnType<typeof openEngines>>;
  let app: FastifyInstance;
  let doc: Doc;
  const dir = tempDir('duo-serve-');
  const cacheDir = tempDir();
  const resolve = (ref: string) => {
    const m = /^#\/components\/schemas\/(.+)$/.exec(ref);
    return m ? doc.components?.schemas?.[decodeURIComponent(m[1]!)] : undefined;
  };
  before(async () => {
    c = await colourCollection(dir);
    engines = await openEngines(c);
    app = await buildApp({ engine: engines.engine, captions: engines.captions, cacheDir, webRoot: false, limits: { maxK: 50 }, version: '9.9.9' });
    const r = await app.inject({ url: '/openapi.json' });
    assert.equal(r.statusCode, 200);
    assert.match(r.headers['content-type'] as string, /application\/json/);
    doc = r.json();
  });
  after(async () => {
    await app.close();
    await engines.close();
  });

  it('is OpenAPI 3.1 with every API route, path parameters declared, responses described', () => {
    assert.equal(doc.openapi, '3.1.0');
    assert.equal(doc.info.title, 'duo-search');
    assert.equal(doc.info.version, '9.9.9');
    const routes = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
    assert.deepEqual(routes.sort(), [
      'GET /metrics',
      'GET /v1/collection',
      'GET /v1/health',
      'GET /v1/images/{id}',
      'GET /v1/images/{id}/thumbnail',
      'GET /v1/items/{id}',
      'GET /v1/items/{id}/similar',
      'GET /v1/ready',
      'POST /v1/captions/search',
      'POST /v1/search',
      'POST /v1/search/image',
    ]);
    for (const [path, ops] of Object.entries(doc.paths)) {
      assert.ok(path.startsWith('/'), path);
      const templated = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
      for (const [method, op] of Object.entries(ops)) {
        assert.ok(METHODS.has(method), method);
        const declared = (op.parameters ?? []).filter((p) => p.in === 'path');
        assert.deepEqual(declared.map((p) => p.name).sort(), [...templated].sort(), `${method} ${path}: path parameters`);
        assert.ok(declared.every((p) => p.required === true), `${method} ${path}: path parameters are required`);
        for (const p of op.parameters ?? []) assert.ok(['path', 'query', 'header', 'cookie'].includes(p.in), p.in);
        assert.ok(Object.keys(op.responses).length > 0, `${method} ${path}: responses`);
        for (const [status, response] of Object.entries(op.responses)) {
          assert.match(status, /^([1-5]\d\d|default)$/);
          assert.equal(typeof response.description, 'string', `${method} ${path} ${status}: description`);
        }
      }
    }
  });

  it('every schema in it is well-formed JSON Schema 2020-12 and every $ref resolves', () => {
    const problems: string[] = [];
    const check = (schema: unknown, where: string) => problems.push(...schemaProblems(schema, resolve, where));
    for (const [name, schema] of Object.entries(doc.components?.schemas ?? {})) check(schema, `components.${name}`);
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        for (const p of op.parameters ?? []) check(p.schema, `${method} ${path} parameter ${p.name}`);
        for (const [type, body] of Object.entries(op.requestBody?.content ?? {})) check(body.schema, `${method} ${path} body ${type}`);
        for (const [status, r] of Object.entries(op.responses)) for (const [type, body] of Object.entries(r.content ?? {})) check(body.schema, `${method} ${path} ${status} ${type}`);
      }
    }
    assert.deepEqual(problems, []);
  });

  it('documents the server’s limits and the one error shape, from the schemas that validate', () => {
    const body = doc.paths['/v1/search']!.post!.requestBody!.content['application/json']!.schema as { properties: Record<string, { maximum?: number; default?: unknown; maxLength?: number }>; required: string[] };
    assert.equal(body.properties.k!.maximum, 50, 'the server’s cap, not the engine’s');
    assert.equal(body.properties.k!.default, 10);
    assert.equal(body.properties.k1!.maximum, 1000);
    assert.equal(body.properties.text!.maxLength, 500);
    assert.ok(!(body.required ?? []).includes('text'), 'text or terms: the body says which (one of the two)');
    assert.ok('terms' in body.properties);
    for (const key of ['mode', 'k', 'k1', 'offset', 'fusion', 'alpha', 'rrfK', 'normalisation', 'mmr', 'where', 'budgetMs', 'explain']) assert.ok(key in body.properties, key);
    assert.ok(!('rerankBatchSize' in body.properties));
    const upload = doc.paths['/v1/search/image']!.post!.requestBody!.content;
    assert.deepEqual(Object.keys(upload), ['multipart/form-data']);
    assert.equal((upload['multipart/form-data']!.schema as { properties: Record<string, { format?: string }> }).properties.image!.format, 'binary');
    const error = doc.paths['/v1/search']!.post!.responses['400']!.content!['application/json']!.schema;
    assert.deepEqual(validate(error, { error: { code: 'BAD_ARGUMENT', message: 'k: Too big', field: 'k' } }, resolve), []);
    assert.notDeepEqual(validate(error, { message: 'no' }, resolve), []);
  });

  it("the server's real answers conform to the documented response schemas", async () => {
    const schemaOf = (path: string, method: string, status: number) => doc.paths[path]![method]!.responses[String(status)]!.content!['application/json']!.schema;
    const checks: [string, string, Promise<{ statusCode: number; json: () => unknown }>][] = [
      ['/v1/search', 'post', app.inject({ method: 'POST', url: '/v1/search', payload: { text: 'red', mode: 'hybrid', k: 3, explain: true } })],
      ['/v1/search', 'post', app.inject({ method: 'POST', url: '/v1/search', payload: { text: 'red', k: 51 } })],
      ['/v1/search/image', 'post', app.inject({ method: 'POST', url: '/v1/search/image', ...multipart({ k: '2' }, [['image', readFileSync(join(c.root, 'warm', 'red.jpg'))]]) })],
      ['/v1/captions/search', 'post', app.inject({ method: 'POST', url: '/v1/captions/search', ...multipart({ mode: 'hybrid', k: '2' }, [['image', readFileSync(join(c.root, 'warm', 'red.jpg'))]]) })],
      ['/v1/items/{id}/similar', 'get', app.inject({ url: '/v1/items/warm%2Fred.jpg/similar?k=2' })],
      ['/v1/items/{id}/similar', 'get', app.inject({ url: '/v1/items/nope/similar' })],
      ['/v1/items/{id}', 'get', app.inject({ url: '/v1/items/warm%2Fred.jpg' })],
      ['/v1/collection', 'get', app.inject({ url: '/v1/collection' })],
      ['/v1/health', 'get', app.inject({ url: '/v1/health' })],
      ['/v1/ready', 'get', app.inject({ url: '/v1/ready' })],
    ];
    for (const [path, method, pending] of checks) {
      const r = await pending;
      assert.deepEqual(validate(schemaOf(path, method, r.statusCode), r.json(), resolve), [], `${method} ${path} ${r.statusCode}`);
    }
  });
});
