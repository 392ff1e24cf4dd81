/** The bounded model queue, overload (503 + Retry-After, or stage 1 marked), time budgets, and cancellation on disconnect. */
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import type { Encoder } from '../../src/models/encoder.js';
import type { CrossEncoder } from '../../src/models/reranker.js';
import { SearchEngine } from '../../src/search/engine.js';
import { buildApp } from '../../src/serve/app.js';
import type { ServeLimitsInput } from '../../src/serve/limits.js';
import { QueueFull, WorkQueue } from '../../src/serve/work-queue.js';
import { tempDir } from '../helpers.js';
import { colourCollection, openEngines, type Collection } from './fixture.js';

const tick = () => new Promise((r) => setTimeout(r, 5));

/** A cross-encoder that holds every call until opened, and records each call's signal. */
function gatedReranker() {
  const signals: AbortSignal[] = [];
  let open!: () => void;
  let gate = new Promise<void>((r) => (open = r));
  const reranker: CrossEncoder = {
    id: 'gated',
    score: async (_q, candidates, o) => {
      signals.push(o!.signal!);
      await Promise.race([gate, new Promise((_, reject) => o?.signal?.addEventListener('abort', () => reject(o.signal!.reason), { once: true }))]);
      return { scores: candidates.map((_, i) => -i), ms: 0, calls: 1, batchSize: candidates.length };
    },
    dispose: async () => {},
  };
  return {
    reranker,
    signals,
    open: () => open(),
    close: () => (gate = new Promise<void>((r) => (open = r))),
  };
}

describe('WorkQueue', () => {
  it('runs at most `concurrency`, queues at most `length` in order, refuses one more', async () => {
    const q = new WorkQueue(2, 2);
    const order: number[] = [];
    const a = await q.acquire();
    const b = await q.acquire();
    const c = q.acquire().then((release) => (order.push(3), release));
    const d = q.acquire().then((release) => (order.push(4), release));
    assert.equal(q.active, 2);
    assert.equal(q.depth, 2);
    await assert.rejects(q.acquire(), (e: unknown) => e instanceof QueueFull && e.waiting === 2);
    assert.equal(q.rejected, 1);
    a();
    a(); // a second release of the same slot does nothing
    const releaseC = await c;
    assert.equal(q.active, 2);
    b();
    (await d)();
    releaseC();
    assert.deepEqual(order, [3, 4]);
    assert.equal(q.active, 0);
    assert.equal(q.depth, 0);
  });

  it('a waiter whose signal aborts leaves the queue and never takes a slot', async () => {
    const q = new WorkQueue(1, 4);
    const hold = await q.acquire();
    const controller = new AbortController();
    const waiting = q.acquire(controller.signal);
    const next = q.acquire();
    assert.equal(q.depth, 2);
    controller.abort(new Error('client left'));
    await assert.rejects(waiting, /client left/);
    assert.equal(q.depth, 1);
    hold();
    (await next)();
    assert.equal(q.active, 0);
    assert.equal(await q.run(async () => 7), 7);
  });
});

describe('back-pressure and cancellation over HTTP', () => {
  let c: Collection;
  let engines: Awaited<ReturnType<typeof openEngines>>;
  const dir = tempDir('duo-serve-');
  const cacheDir = tempDir();
  const apps: FastifyInstance[] = [];
  before(async () => {
    c = await colourCollection(dir);
    engines = await openEngines(c);
  });
  after(async () => {
    for (const a of apps) await a.close();
    await engines.close();
  });
  /** an app over the collection with this cross-encoder (and encoder), no engine caches */
  const appWith = async (reranker: CrossEncoder, limits: ServeLimitsInput, encoder: Encoder = engines.engine.encoder) => {
    const engine = new SearchEngine({ store: engines.engine.store, encoder, reranker }, { cacheBytes: { embeddings: 0, responses: 0 } });
    const app = await buildApp({ engine, cacheDir, webRoot: false, limits });
    apps.push(app);
    return app;
  };
  const hybrid = (app: FastifyInstance, text = 'red') => app.inject({ method: 'POST', url: '/v1/search', payload: { text, mode: 'hybrid', k: 2, k1: 4 } });
  const depth = async (app: FastifyInstance) => Number(/duo_queue_depth (\d+)/.exec((await app.inject({ url: '/metrics' })).body)![1]);
  async function until(condition: () => boolean | Promise<boolean>, what: string) {
    for (let i = 0; i < 400; i++) {
      if (await condition()) return;
      await tick();
    }
    assert.fail(`timed out waiting for ${what}`);
  }

  it('a full queue answers 503 with Retry-After; stage-1 requests are not queued', async () => {
    const g = gatedReranker();
    const app = await appWith(g.reranker, { queueConcurrency: 1, queueLength: 1, retryAfterS: 3 });
    const first = hybrid(app);
    await until(() => g.signals.length === 1, 'the first request in stage 2');
    const second = hybrid(app);
    await until(async () => (await depth(app)) === 1, 'the second request queued');
    const third = await hybrid(app);
    assert.equal(third.statusCode, 503);
    assert.equal(third.headers['retry-after'], '3');
    assert.equal(third.json().error.code, 'OVERLOADED');
    const stage1 = await app.inject({ method: 'POST', url: '/v1/search', payload: { text: 'red', k: 1 } });
    assert.equal(stage1.statusCode, 200, 'stage 1 needs no model slot');
    g.open();
    assert.equal((await first).statusCode, 200);
    assert.equal((await second).statusCode, 200);
    assert.match((await app.inject({ url: '/metrics' })).body, /duo_queue_rejected_total 1/);
  });

  it('or, configured so, answers stage-1 results marked as such', async () => {
    const g = gatedReranker();
    const app = await appWith(g.reranker, { queueConcurrency: 1, queueLength: 0, onOverload: 'stage1' });
    const first = hybrid(app);
    await until(() => g.signals.length === 1, 'the first request in stage 2');
    const busy = await hybrid(app, 'blue');
    assert.equal(busy.statusCode, 200, busy.body);
    const body = busy.json();
    assert.equal(body.mode, 'hybrid');
    assert.match(body.fallback, /busy.*stage-1 results/);
    assert.equal(body.results[0].stage2, undefined);
    assert.equal(body.results[0].id, 'cold/blue.jpg');
    g.open();
    assert.equal((await first).json().fallback, undefined);
    assert.match((await app.inject({ url: '/metrics' })).body, /duo_search_fallbacks_total\{index="main",reason="overload"\} 1/);
  });

  it("caps stage 2's budget at what is left of the request's: a slow stage 2 falls back in time", async () => {
    const g = gatedReranker(); // never opened: stage 2 would wait forever
    const app = await appWith(g.reranker, { requestBudgetMs: 300 });
    const t = performance.now();
    const r = await app.inject({ method: 'POST', url: '/v1/search', payload: { text: 'red', mode: 'hybrid', k: 2, k1: 4, budgetMs: 300 } });
    const took = performance.now() - t;
    assert.equal(r.statusCode, 200, r.body);
    assert.match(r.json().fallback, /passed its \d+ ms budget/);
    assert.ok(took < 1000, `answered in ${took} ms`);
    assert.ok(g.signals[0]!.aborted, 'the abandoned stage-2 work was told to stop');
  });

  it('a request past its whole budget is a 503 TIMEOUT, and its work is cancelled', async () => {
    const e = engines.engine.encoder;
    const signals: AbortSignal[] = [];
    const slow: Encoder = {
      id: e.id,
      dim: e.dim,
      normalized: e.normalized,
      similarity: e.similarity,
      encodeTexts: (texts, o) => {
        signals.push(o!.signal!);
        return new Promise((resolve, reject) => {
          const timer = setTimeout(() => resolve(e.encodeTexts(texts)), 2000);
          o?.signal?.addEventListener('abort', () => (clearTimeout(timer), reject(o.signal!.reason)), { once: true });
        });
      },
      encodeImages: (i, o) => e.encodeImages(i, o),
      dispose: async () => {},
    };
    const app = await appWith(gatedReranker().reranker, { requestBudgetMs: 100, retryAfterS: 2 }, slow);
    const r = await app.inject({ method: 'POST', url: '/v1/search', payload: { text: 'red' } });
    assert.equal(r.statusCode, 503, r.body);
    assert.equal(r.json().error.code, 'TIMEOUT');
    assert.equal(r.headers['retry-after'], '2');
    assert.ok(signals[0]!.aborted);
  });

  it('a client that disconnects cancels its stage-2 work and frees its slot; a queued one leaves the queue', async () => {
    const g = gatedReranker();
    const app = await appWith(g.reranker, { queueConcurrency: 1, queueLength: 4 });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as { port: number };
    const send = () => {
      const req = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: '/v1/search', headers: { 'content-type': 'application/json' } });
      req.on('error', () => {}); // we hang up on purpose
      req.end(JSON.stringify({ text: 'red', mode: 'hybrid', k: 2, k1: 4 }));
      return req;
    };
    const running = send();
    await until(() => g.signals.length === 1, 'the request in stage 2');
    const queued = send();
    await until(async () => (await depth(app)) === 1, 'the second request queued');
    queued.destroy();
    await until(async () => (await depth(app)) === 0, 'the queued request to leave');
    assert.equal(g.signals.length, 1, 'the queued request never reached stage 2');
    running.destroy();
    await until(() => g.signals[0]!.aborted, 'stage 2 to be cancelled');
    // the slot is free again: the next request runs (and the gate lets it through)
    g.open();
    const next = await hybrid(app);
    assert.equal(next.statusCode, 200, next.body);
    assert.equal(next.json().fallback, undefined);
  });
});
