import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readCaptionFile } from '../../src/data/caption-file.js';
import { buildCaptionIndex } from '../../src/index/build-caption-index.js';
import { buildIndex } from '../../src/index/build-index.js';
import { BlipItmReranker } from '../../src/models/blip/blip-itm.js';
import type { Encoder } from '../../src/models/encoder.js';
import { loadEncoder } from '../../src/models/load-encoder.js';
import type { CrossEncoder } from '../../src/models/reranker.js';
import { SearchEngine } from '../../src/search/engine.js';
import { openEngine } from '../../src/search/open-engine.js';
import { DuoError } from '../../src/errors.js';
import { packageRoot } from '../../src/util/package-root.js';
import { COLOURS, tempDir, writeColourImage, wrapEncoder } from '../helpers.js';

const CLIP = join(packageRoot(), 'models', 'colour-clip');
const BLIP = join(packageRoot(), 'models', 'colour-blip');

describe('SearchEngine', () => {
  const root = join(tempDir(), 'photos');
  const indexPath = join(tempDir(), 'photos.duo');
  let encoder: Encoder;
  let blip: CrossEncoder;
  before(async () => {
    mkdirSync(join(root, 'warm'), { recursive: true });
    mkdirSync(join(root, 'cold'), { recursive: true });
    const names = Object.keys(COLOURS);
    await Promise.all(names.map((n) => writeColourImage(join(root, ['red', 'yellow', 'white'].includes(n) ? 'warm' : 'cold', `${n}.jpg`), COLOURS[n]!)));
    await writeColourImage(join(root, 'warm', 'red2.jpg'), [215, 25, 35]); // a near-duplicate of red
    encoder = await loadEncoder(CLIP);
    blip = await BlipItmReranker.load(BLIP);
    await buildIndex({ root, indexPath, encoder, modelSpec: CLIP, reranker: blip, rerankerSpec: BLIP });
  });
  /** the test's encoder behind a plain object, with some methods replaced */
  const wrapped = (extra: Partial<Encoder>) => wrapEncoder(encoder, extra);
  /** an engine over the test index that borrows the test's models */
  const open = (reranker: CrossEncoder | 'none' = 'none', index = indexPath) => openEngine({ index, encoder, reranker });
  after(async () => {
    await blip.dispose();
  });

  it('stage 1 alone: ranked hits with stage-1 scores and per-stage latency', async () => {
    const engine = await open();
    const started = performance.now();
    const [r] = await engine.search([{ text: 'something red' }], { k: 3 });
    const wall = performance.now() - started;
    assert.equal(r!.mode, 'stage1');
    assert.match(r!.results[0]!.id, /warm\/red2?\.jpg/);
    assert.equal(r!.results.length, 3);
    assert.equal(r!.results[0]!.stage2, undefined);
    assert.ok(r!.results[0]!.score > r!.results[2]!.score);
    const l = r!.latencyMs;
    assert.ok(l.encode > 0 && l.stage1 > 0, 'both stages were timed');
    assert.equal(l.stage2, 0, 'stage 2 did not run');
    assert.ok(l.total <= wall, `the stages (${l.total} ms) fit in the call (${wall} ms)`);
    assert.equal(r!.results[0]!.path, join(root, r!.results[0]!.id));
    assert.equal(typeof r!.results[0]!.metadata.bytes, 'number');
    await engine.close();
  });

  it('hybrid: stage 2 rescores the k1 candidates, with both stages explained', async () => {
    const engine = await open(blip);
    for (const fusion of ['replace', 'weighted', 'rrf'] as const) {
      const [r] = await engine.search([{ text: 'a blue photo' }], { mode: 'hybrid', k1: 7, k: 7, fusion });
      assert.equal(r!.results[0]!.id, 'cold/blue.jpg', fusion);
      assert.ok(r!.results.every((h) => h.stage2 && Number.isFinite(h.stage2.score)));
      // every candidate was rescored: both stages' ranks are permutations of 1..7
      assert.deepEqual(r!.results.map((h) => h.stage1.rank).sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7]);
      assert.deepEqual(r!.results.map((h) => h.stage2!.rank).sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7]);
      if (fusion === 'replace') assert.deepEqual(r!.results.map((h) => h.stage2!.rank), [1, 2, 3, 4, 5, 6, 7], 'replace orders by stage 2 alone');
      assert.ok(r!.latencyMs.stage2 > 0);
    }
  });

  it('batches queries and answers a repeated query from the cache', async () => {
    const engine = await open(blip);
    const queries = [{ text: 'green' }, { text: 'black' }, { image: join(root, 'cold', 'green.jpg') }];
    const first = await engine.search(queries, { mode: 'hybrid', k1: 5, k: 2 });
    assert.deepEqual(first.map((r) => r.results[0]!.id), ['cold/green.jpg', 'cold/black.jpg', 'cold/green.jpg']);
    assert.match(first[2]!.fallback!, /image→image.*stage-1 results/, 'an image query over images has no image–text pair to rescore');
    const again = await engine.search([{ text: 'black' }], { mode: 'hybrid', k1: 5, k: 2 });
    assert.equal(again[0]!.cached, true);
    assert.deepEqual(again[0]!.results, first[1]!.results);
    assert.equal(engine.stats.responseHits, 1);
    const other = await engine.search([{ text: 'black' }], { mode: 'hybrid', k1: 6, k: 2 });
    assert.equal(other[0]!.cached, undefined, 'other options are another cache entry');
    assert.equal(engine.stats.embeddingHits, 1, 'the query embedding was reused');
  });

  it('falls back to stage 1, marked, when stage 2 fails or is too slow', async () => {
    const broken: CrossEncoder = { id: 'broken', score: async () => { throw new Error('model crashed'); }, dispose: async () => {} };
    const slow: CrossEncoder = { id: 'slow', score: () => new Promise((res) => setTimeout(() => res({ scores: [], ms: 0, calls: 1, batchSize: 1 }), 500)), dispose: async () => {} };
    // busy for 80 ms without ever yielding: the timer cannot fire, the arrival check must catch it
    const blocking: CrossEncoder = {
      id: 'blocking',
      score: async (_q, c) => {
        const end = performance.now() + 80;
        while (performance.now() < end);
        return { scores: c.map(() => 1), ms: 80, calls: 1, batchSize: c.length };
      },
      dispose: async () => {},
    };
    for (const [reranker, reason] of [[broken, /failed: model crashed/], [slow, /passed its 50 ms budget/], [blocking, /passed its 50 ms budget/]] as const) {
      const engine = await open(reranker);
      const [r] = await engine.search([{ text: 'white' }], { mode: 'hybrid', k1: 5, k: 2, budgetMs: 50 });
      assert.match(r!.fallback!, reason);
      assert.equal(r!.results[0]!.id, 'warm/white.jpg');
      assert.equal(r!.results[0]!.stage2, undefined);
    }
  });

  it('stops abandoned stage-2 work when the budget runs out, and a cancelled search rejects', async () => {
    let calls = 0;
    // one candidate per batch, 30 ms each, checking the signal between batches as the real models do
    const batched: CrossEncoder = {
      id: 'batched',
      score: async (_q, c, o) => {
        const scores: number[] = [];
        for (let i = 0; i < c.length; i++) {
          o?.signal?.throwIfAborted();
          calls++;
          await new Promise((r) => setTimeout(r, 30));
          scores.push(i);
        }
        return { scores, ms: 0, calls, batchSize: 1 };
      },
      dispose: async () => {},
    };
    const engine = await open(batched);
    const [r] = await engine.search([{ text: 'white' }], { mode: 'hybrid', k1: 7, k: 2, budgetMs: 50 });
    assert.match(r!.fallback!, /passed its 50 ms budget/);
    const atFallback = calls;
    await new Promise((res) => setTimeout(res, 250));
    assert.equal(calls, atFallback, 'no batch starts after the budget ran out');
    assert.ok(calls <= 3, `${calls} of 7 batches ran`);
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(engine.search([{ text: 'blue' }], { mode: 'hybrid' }, { signal: controller.signal }), { name: 'AbortError' });
  });

  it('filters before stage 2, pages with offset, and MMR brings in items from beyond the top k', async () => {
    const engine = await open(blip);
    const [cold] = await engine.search([{ text: 'red' }], { k: 10, where: { id: { prefix: 'cold/' } } });
    assert.ok(cold!.results.every((h) => h.id.startsWith('cold/')));
    assert.equal(cold!.results.length, 3);
    const [small] = await engine.search([{ text: 'red' }], { k: 10, where: { bytes: { lt: 1 } } });
    assert.equal(small!.results.length, 0, 'no file is under one byte');
    const [plain] = await engine.search([{ text: 'red' }], { k: 4 });
    assert.deepEqual(plain!.results.slice(0, 2).map((h) => h.id).sort(), ['warm/red.jpg', 'warm/red2.jpg']);
    const [page2] = await engine.search([{ text: 'red' }], { k: 2, offset: 2 });
    assert.deepEqual(page2!.results.map((h) => [h.rank, h.id]), plain!.results.slice(2).map((h) => [h.rank, h.id]));
    const [diverse] = await engine.search([{ text: 'red' }], { k: 2, mmr: 0.3 });
    assert.ok(!diverse!.results[1]!.id.startsWith('warm/red'), `second: ${diverse!.results[1]!.id}`);
    assert.ok(diverse!.results[1]!.stage1.rank > 2, 'the second result comes from beyond the stage-1 top 2');
  });

  it('more like this: an item query searches by its stored vector and leaves the item out', async () => {
    const engine = await open(blip);
    const [r] = await engine.search([{ item: 'warm/red.jpg' }], { k: 3 });
    assert.equal(r!.query, 'item:warm/red.jpg');
    assert.ok(r!.results.every((h) => h.id !== 'warm/red.jpg'), 'the item itself is not among its similar items');
    assert.equal(r!.results.length, 3);
    assert.equal(r!.results[0]!.id, 'warm/red2.jpg', 'its near-duplicate comes first');
    assert.deepEqual(r!.results.map((h) => h.stage1.rank), [1, 2, 3]);
    // the same as querying by the image file, less the item
    const [byImage] = await engine.search([{ image: join(root, 'warm', 'red.jpg') }], { k: 4 });
    assert.deepEqual(r!.results.map((h) => h.id), byImage!.results.map((h) => h.id).filter((id) => id !== 'warm/red.jpg').slice(0, 3));
    const [page2] = await engine.search([{ item: 'warm/red.jpg' }], { k: 2, offset: 2 });
    assert.deepEqual(page2!.results.map((h) => [h.rank, h.id]), [[3, r!.results[2]!.id], [4, page2!.results[1]!.id]]);
    const [hybrid] = await engine.search([{ item: 'warm/red.jpg' }], { mode: 'hybrid', k: 2 });
    assert.match(hybrid!.fallback!, /more like this.*stage-1 results/);
    assert.deepEqual(hybrid!.results.map((h) => h.id), r!.results.slice(0, 2).map((h) => h.id));
    const [filtered] = await engine.search([{ item: 'warm/red.jpg' }], { k: 10, where: { id: { prefix: 'cold/' } } });
    assert.ok(filtered!.results.length === 3 && filtered!.results.every((h) => h.id.startsWith('cold/')));
    await assert.rejects(engine.search([{ item: 'nope.jpg' }]), (e: unknown) => e instanceof DuoError && e.code === 'ITEM_NOT_FOUND' && /nope\.jpg/.test((e as Error).message));
    await assert.rejects(engine.search([{ item: '' }]), (e: unknown) => e instanceof DuoError && e.code === 'BAD_ARGUMENT' && (e as DuoError).args[0] === 'item');
  });

  it('refuses empty queries and queries with no word the model knows, naming the words', async () => {
    const picky = wrapped({ textCoverage: (t) => ({ known: t.split(' ').filter((w) => w in COLOURS), unknown: t.split(' ').filter((w) => !(w in COLOURS)) }) });
    const engine = new SearchEngine({ store: (await open()).store, encoder: picky });
    await assert.rejects(engine.search([{ text: '   ' }]), (e: unknown) => e instanceof DuoError && e.code === 'BAD_ARGUMENT' && /query: is empty/.test((e as Error).message));
    await assert.rejects(engine.search([{ text: 'zebra quagga' }]), (e: unknown) => e instanceof DuoError && e.code === 'QUERY_NOT_UNDERSTOOD' && /zebra, quagga/.test((e as Error).message));
    const [r] = await engine.search([{ text: 'zebra red' }], { k: 1 });
    assert.match(r!.results[0]!.id, /red/, 'one known word is enough');
  });

  it('opens with the cross-encoder the index recorded, and disposes only what it created', async () => {
    let disposed = 0;
    const counted = wrapped({ dispose: async () => void disposed++ });
    const engine = await openEngine({ index: indexPath, encoder: counted });
    assert.equal(engine.reranker?.id, blip.id, 'hybrid search needs no --reranker: the index names it');
    const [r] = await engine.search([{ text: 'a blue photo' }], { mode: 'hybrid', k1: 7, k: 1 });
    assert.equal(r!.results[0]!.id, 'cold/blue.jpg');
    await engine.close();
    assert.equal(disposed, 0, 'a borrowed encoder is not disposed');
    assert.equal((await counted.encodeTexts(['red'])).length, 1, 'and still works');
    await assert.rejects(engine.store.count(), /closed/, 'the store openEngine opened is closed with the engine');
    // an engine built by hand from parts closes none of them
    const parts = await open();
    const plain = new SearchEngine({ store: parts.store, encoder });
    await plain.close();
    assert.equal(await plain.store.count(), 7, 'its store is still open');
    await parts.close();
  });

  it('image→text over a caption collection: stage 2 rescores the captions for the image', async () => {
    const file = join(tempDir(), 'captions.jsonl');
    const names = Object.keys(COLOURS);
    writeFileSync(file, names.map((n, i) => JSON.stringify({ id: `c${i}`, text: `a ${n} photo`, album: i % 2 ? 'odd' : 'even' })).join('\n'));
    const captionIndex = join(tempDir(), 'captions.duo');
    await buildCaptionIndex({ captions: await readCaptionFile(file), indexPath: captionIndex, encoder, modelSpec: CLIP, source: file });
    const engine = await open(blip, captionIndex);
    assert.equal(engine.captions, true);
    const image = { image: join(root, 'cold', 'blue.jpg') };
    const [s1] = await engine.search([image], { k: 2 });
    assert.equal(s1!.results[0]!.text, 'a blue photo');
    assert.equal(s1!.results[0]!.path, undefined);
    for (const fusion of ['replace', 'weighted', 'rrf'] as const) {
      const [r] = await engine.search([image], { mode: 'hybrid', k1: 6, k: 3, fusion });
      assert.equal(r!.fallback, undefined, fusion);
      assert.equal(r!.results[0]!.text, 'a blue photo', fusion);
      assert.ok(r!.results.every((h) => h.stage2 && Number.isFinite(h.stage2.score)));
    }
    // blue is c2: an even album; filters read the stored fields
    const [odd] = await engine.search([image], { k: 6, where: { album: 'odd' } });
    assert.deepEqual(odd!.results.map((h) => h.id).sort(), ['c1', 'c3', 'c5']);
    await assert.rejects(engine.search([{ text: 'blue' }], { mode: 'hybrid' }), /holds captions/);
  });

  it("weighted fusion takes the reranker's own α for the query's direction unless the caller sets one", async () => {
    // scores candidates by their stage-1 rank reversed: with α = 1 the last becomes first, with α = 0 stage 1 stands
    const reverse = (fusionAlpha?: CrossEncoder['fusionAlpha']): CrossEncoder => ({
      id: 'reverse',
      fusionAlpha,
      score: async (_q, c) => ({ scores: c.map((_, i) => i), ms: 0, calls: 1, batchSize: c.length }),
      dispose: async () => {},
    });
    const file = join(tempDir(), 'captions.jsonl');
    writeFileSync(file, Object.keys(COLOURS).map((n, i) => JSON.stringify({ id: `c${i}`, text: `a ${n} photo` })).join('\n'));
    const captionIndex = join(tempDir(), 'captions.duo');
    await buildCaptionIndex({ captions: await readCaptionFile(file), indexPath: captionIndex, encoder, modelSpec: CLIP, source: file });
    const text = { text: 'green' };
    const image = { image: join(root, 'cold', 'blue.jpg') };
    const ranks = async (reranker: CrossEncoder, index: string, q: typeof text | typeof image, alpha?: number) => {
      const engine = await open(reranker, index);
      const [r] = await engine.search([q], { mode: 'hybrid', k1: 4, k: 4, ...(alpha === undefined ? {} : { alpha }) });
      await engine.close();
      assert.equal(r!.fallback, undefined);
      return r!.results.map((h) => h.stage1.rank);
    };
    const reversed = [4, 3, 2, 1];
    const kept = [1, 2, 3, 4];
    // per direction: all of stage 2 for text→image, none for image→text
    const split = reverse({ textToImage: 1, imageToText: 0 });
    assert.deepEqual(await ranks(split, indexPath, text), reversed);
    assert.deepEqual(await ranks(split, captionIndex, image), kept);
    const captions = await open(split, captionIndex);
    assert.equal(captions.resolveOptions({}).alpha, 0, 'what --explain reports is the α used');
    await captions.close();
    // the caller's α overrides both
    assert.deepEqual(await ranks(split, indexPath, text, 0), kept);
    assert.deepEqual(await ranks(split, captionIndex, image, 1), reversed);
    // a model with one α (an older manifest: both directions alike), and one with none (0.5)
    const one = reverse({ textToImage: 1, imageToText: 1 });
    assert.deepEqual(await ranks(one, indexPath, text), reversed);
    assert.deepEqual(await ranks(one, captionIndex, image), reversed);
    const none = await open(reverse(), indexPath);
    assert.equal(none.resolveOptions({}).alpha, 0.5);
    await none.close();
  });

  it('rejects bad options by name', async () => {
    const engine = await open();
    await assert.rejects(engine.search([{ text: 'x' }], { k: 0 }), { message: /^k: Too small/ });
    await assert.rejects(engine.search([{ text: 'x' }], { alpha: 2 }), /alpha/);
    await assert.rejects(engine.search([{ text: 'x' }], { where: { n: { between: 1 } } } as never), /where/);
    await assert.rejects(engine.search([{ text: 'x' }], { mode: 'hybrid' }), /cross-encoder/);
  });
});
