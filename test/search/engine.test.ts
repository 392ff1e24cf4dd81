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
import { packageRoot } from '../../src/util/package-root.js';
import { COLOURS, tempDir, writeColourImage } from '../helpers.js';

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
    await buildIndex({ root, indexPath, encoder, modelSpec: CLIP });
  });
  after(async () => {
    await blip.dispose();
  });

  it('stage 1 alone: ranked hits with stage-1 scores and per-stage latency', async () => {
    const engine = await SearchEngine.open(indexPath, { encoder });
    const [r] = await engine.search([{ text: 'something red' }], { k2: 3 });
    assert.equal(r!.mode, 'stage1');
    assert.match(r!.results[0]!.id, /warm\/red2?\.jpg/);
    assert.equal(r!.results.length, 3);
    assert.equal(r!.results[0]!.stage2, undefined);
    assert.ok(r!.latencyMs.total >= r!.latencyMs.stage1);
  });

  it('hybrid: stage 2 rescores the k1 candidates, with both stages explained', async () => {
    const engine = await SearchEngine.open(indexPath, { encoder, reranker: blip });
    for (const fusion of ['replace', 'weighted', 'rrf'] as const) {
      const [r] = await engine.search([{ text: 'a blue photo' }], { mode: 'hybrid', k1: 7, k2: 3, fusion });
      assert.equal(r!.results[0]!.id, 'cold/blue.jpg', fusion);
      for (const h of r!.results) {
        assert.ok(h.stage2 && Number.isFinite(h.stage2.score) && h.stage2.rank >= 1);
        assert.ok(h.stage1.rank >= 1);
      }
      assert.ok(r!.latencyMs.stage2 > 0);
    }
  });

  it('batches queries and answers a repeated query from the cache', async () => {
    const engine = await SearchEngine.open(indexPath, { encoder, reranker: blip });
    const queries = [{ text: 'green' }, { text: 'black' }, { image: join(root, 'cold', 'green.jpg') }];
    const first = await engine.search(queries, { mode: 'hybrid', k1: 5, k2: 2 });
    assert.deepEqual(first.map((r) => r.results[0]!.id), ['cold/green.jpg', 'cold/black.jpg', 'cold/green.jpg']);
    assert.match(first[2]!.fallback!, /image→image.*stage-1 results/, 'an image query over images has no image–text pair to rescore');
    const again = await engine.search([{ text: 'black' }], { mode: 'hybrid', k1: 5, k2: 2 });
    assert.equal(again[0]!.cached, true);
    assert.deepEqual(again[0]!.results, first[1]!.results);
    const other = await engine.search([{ text: 'black' }], { mode: 'hybrid', k1: 6, k2: 2 });
    assert.equal(other[0]!.cached, undefined, 'other options are another cache entry');
    assert.ok(engine.embeddings.hits >= 1, 'the query embedding was reused');
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
      const engine = await SearchEngine.open(indexPath, { encoder, reranker });
      const [r] = await engine.search([{ text: 'white' }], { mode: 'hybrid', k1: 5, k2: 2, budgetMs: 50 });
      assert.match(r!.fallback!, reason);
      assert.equal(r!.results[0]!.id, 'warm/white.jpg');
      assert.equal(r!.results[0]!.stage2, undefined);
    }
  });

  it('filters by folder before stage 2, and MMR pushes a near-duplicate down', async () => {
    const engine = await SearchEngine.open(indexPath, { encoder, reranker: blip });
    const [cold] = await engine.search([{ text: 'red' }], { k2: 10, where: { folder: 'cold' } });
    assert.ok(cold!.results.every((h) => h.id.startsWith('cold/')));
    assert.equal(cold!.results.length, 3);
    const [plain] = await engine.search([{ text: 'red' }], { k2: 3 });
    assert.deepEqual(plain!.results.slice(0, 2).map((h) => h.id).sort(), ['warm/red.jpg', 'warm/red2.jpg']);
    const [diverse] = await engine.search([{ text: 'red' }], { k2: 3, mmrLambda: 0.3 });
    assert.ok(diverse!.results[1]!.id !== 'warm/red.jpg' && diverse!.results[1]!.id !== 'warm/red2.jpg', `second: ${diverse!.results[1]!.id}`);
  });

  it('image→text over a caption collection: stage 2 rescores the captions for the image', async () => {
    const file = join(tempDir(), 'captions.jsonl');
    const names = Object.keys(COLOURS);
    writeFileSync(file, names.map((n, i) => JSON.stringify({ id: `c${i}`, text: `a ${n} photo`, album: i % 2 ? 'odd' : 'even' })).join('\n'));
    const captionIndex = join(tempDir(), 'captions.duo');
    await buildCaptionIndex({ captions: await readCaptionFile(file), indexPath: captionIndex, encoder, modelSpec: CLIP, source: file });
    const engine = await SearchEngine.open(captionIndex, { encoder, reranker: blip });
    assert.equal(engine.captions, true);
    const image = { image: join(root, 'cold', 'blue.jpg') };
    const [s1] = await engine.search([image], { k2: 2 });
    assert.equal(s1!.results[0]!.text, 'a blue photo');
    assert.equal(s1!.results[0]!.path, undefined);
    for (const fusion of ['replace', 'weighted', 'rrf'] as const) {
      const [r] = await engine.search([image], { mode: 'hybrid', k1: 6, k2: 3, fusion });
      assert.equal(r!.fallback, undefined, fusion);
      assert.equal(r!.results[0]!.text, 'a blue photo', fusion);
      assert.ok(r!.results.every((h) => h.stage2 && Number.isFinite(h.stage2.score)));
    }
    // blue is c2: an even album; filters read the stored fields
    const [odd] = await engine.search([image], { k2: 6, where: { album: 'odd' } });
    assert.deepEqual(odd!.results.map((h) => h.id).sort(), ['c1', 'c3', 'c5']);
    await assert.rejects(engine.search([{ text: 'blue' }], { mode: 'hybrid' }), /holds captions/);
  });

  it("weighted fusion takes the reranker's own α unless the caller sets one", async () => {
    // scores candidates by their stage-1 rank reversed: with α = 1 the last becomes first
    const reverse: CrossEncoder = {
      id: 'reverse',
      fusionAlpha: 1,
      score: async (_q, c) => ({ scores: c.map((_, i) => i), ms: 0, calls: 1, batchSize: c.length }),
      dispose: async () => {},
    };
    const engine = await SearchEngine.open(indexPath, { encoder, reranker: reverse });
    const [own] = await engine.search([{ text: 'green' }], { mode: 'hybrid', k1: 4, k2: 4 });
    assert.deepEqual(own!.results.map((h) => h.stage1.rank), [4, 3, 2, 1]);
    const [set] = await engine.search([{ text: 'green' }], { mode: 'hybrid', k1: 4, k2: 4, alpha: 0 });
    assert.deepEqual(set!.results.map((h) => h.stage1.rank), [1, 2, 3, 4]);
  });

  it('rejects bad options by name', async () => {
    const engine = await SearchEngine.open(indexPath, { encoder });
    await assert.rejects(engine.search([{ text: 'x' }], { k2: 0 }), /k2/);
    await assert.rejects(engine.search([{ text: 'x' }], { alpha: 2 }), /alpha/);
    await assert.rejects(engine.search([{ text: 'x' }], { mode: 'hybrid' }), /cross-encoder/);
  });
});
