/** Text queries arriving together share one engine call; each keeps its own answer, errors and cancellation. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import type { Encoder } from '../../src/models/encoder.js';
import { SearchEngine } from '../../src/search/engine.js';
import { DEFAULT_SEARCH } from '../../src/search/options.js';
import { buildApp } from '../../src/serve/app.js';
import { QueryBatcher } from '../../src/serve/batcher.js';
import { COLOURS, tempDir } from '../helpers.js';
import { colourCollection, openEngines } from './fixture.js';

describe('query batching', () => {
  let engines: Awaited<ReturnType<typeof openEngines>>;
  const dir = tempDir('duo-serve-');
  const calls: number[] = [];
  const signals: AbortSignal[] = [];
  let counting: Encoder;
  before(async () => {
    engines = await openEngines(await colourCollection(dir));
    const e = engines.engine.encoder;
    counting = {
      id: e.id,
      dim: e.dim,
      normalized: e.normalized,
      similarity: e.similarity,
      encodeTexts: async (texts, o) => {
        calls.push(texts.length);
        signals.push(o!.signal!);
        await new Promise((r) => setTimeout(r, 20));
        o?.signal?.throwIfAborted();
        return e.encodeTexts(texts);
      },
      encodeImages: (i, o) => e.encodeImages(i, o),
      textCoverage: (t) => ({ known: t.split(' ').filter((w) => w in COLOURS), unknown: t.split(' ').filter((w) => !(w in COLOURS)) }),
      dispose: async () => {},
    };
  });
  after(async () => engines.close());
  const engine = () => new SearchEngine({ store: engines.engine.store, encoder: counting }, { cacheBytes: { embeddings: 0, responses: 0 } });

  it('answers requests of one turn with one encoder call, each with its own results', async () => {
    calls.length = 0;
    const app: FastifyInstance = await buildApp({ engine: engine(), cacheDir: tempDir(), webRoot: false });
    const texts = ['red', 'green', 'blue', 'white'];
    const answers = await Promise.all(texts.map((text) => app.inject({ method: 'POST', url: '/v1/search', payload: { text, k: 1 } })));
    assert.deepEqual(calls, [4], 'one encoder batch of four');
    assert.deepEqual(answers.map((r) => r.json().results[0].id), ['warm/red.jpg', 'cold/green.jpg', 'cold/blue.jpg', 'warm/white.jpg']);
    // other options are another batch; a query the model cannot read fails alone
    calls.length = 0;
    const mixed = await Promise.all([
      app.inject({ method: 'POST', url: '/v1/search', payload: { text: 'red', k: 2 } }),
      app.inject({ method: 'POST', url: '/v1/search', payload: { text: 'black', k: 1 } }),
      app.inject({ method: 'POST', url: '/v1/search', payload: { text: 'zebra', k: 1 } }),
    ]);
    assert.deepEqual(mixed.map((r) => r.statusCode), [200, 200, 422]);
    assert.deepEqual(calls.sort(), [1, 1]);
    await app.close();
  });

  it('a cancelled request leaves its batch; the batch is cancelled when all of its requests are', async () => {
    const batcher = new QueryBatcher();
    const e = engine();
    const options = { ...DEFAULT_SEARCH, k: 1 };
    signals.length = 0;
    const [one, two] = [new AbortController(), new AbortController()];
    const first = batcher.search(e, 'red', options, one.signal);
    const second = batcher.search(e, 'blue', options, two.signal);
    await new Promise((r) => setTimeout(r, 5));
    one.abort(new Error('client left'));
    await assert.rejects(first, /client left/);
    assert.equal((await second).results[0]!.id, 'cold/blue.jpg', 'the other request is answered');
    assert.equal(signals[0]!.aborted, false);
    const [three, four] = [new AbortController(), new AbortController()];
    const third = batcher.search(e, 'red', options, three.signal);
    const fourth = batcher.search(e, 'green', options, four.signal);
    await new Promise((r) => setTimeout(r, 5));
    three.abort(new Error('gone'));
    four.abort(new Error('gone too'));
    await assert.rejects(third, /gone/);
    await assert.rejects(fourth, /gone too/);
    assert.equal(signals[1]!.aborted, true, 'the engine was told to stop once nobody waited');
    assert.deepEqual(batcher.stats, { batches: 2, queries: 4 });
  });
});
