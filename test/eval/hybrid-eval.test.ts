import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { evaluateHybrid, latencyStats } from '../../src/eval/hybrid-eval.js';
import { BlipItmReranker } from '../../src/models/blip/blip-itm.js';
import type { Encoder } from '../../src/models/encoder.js';
import { buildIndex } from '../../src/index/build-index.js';
import { loadEncoder } from '../../src/models/load-encoder.js';
import { openEngine } from '../../src/search/open-engine.js';
import { packageRoot } from '../../src/util/package-root.js';
import { colourDataset, tempDir } from '../helpers.js';

/** A stage 1 that ranks every image alike (all vectors equal): only stage 2 can find anything. */
const blind: Encoder = {
  id: 'blind',
  dim: 2,
  normalized: true,
  similarity: { kind: 'cosine' },
  encodeTexts: async (t) => t.map(() => Float32Array.from([1, 0])),
  encodeImages: async (i) => i.map(() => Float32Array.from([1, 0])),
  dispose: async () => {},
};

describe('hybrid evaluation', () => {
  it('stage 2 over all candidates fixes a blind stage 1; with k1 = 1 it cannot', async () => {
    const ds = await colourDataset((n) => [`a ${n} square`, n]);
    const blip = await BlipItmReranker.load(join(packageRoot(), 'models', 'colour-blip'));
    const all = await evaluateHybrid(ds, blind, blip, { k1: ds.captions.length, fusion: 'replace' }); // every image and every caption
    assert.equal(all.textToImage!['R@1'], 100);
    assert.equal(all.imageToText!['R@1'], 100);
    assert.ok(all.latencyMs.stage2.p50 > 0);
    assert.equal(all.refused, 0);
    const one = await evaluateHybrid(ds, blind, blip, { k1: 1, fusion: 'replace', directions: ['textToImage'] });
    assert.ok(one.textToImage!['R@1'] < 50, 'with one candidate, stage 2 can only confirm stage 1');
    assert.equal(one.imageToText, undefined);
    await blip.dispose();
  });

  it("measures what the engine returns: a query ranks its image where a user's search puts it", async () => {
    const ds = await colourDataset((n) => [`a ${n} square`]);
    const clip = await loadEncoder(join(packageRoot(), 'models', 'colour-clip'));
    const blip = await BlipItmReranker.load(join(packageRoot(), 'models', 'colour-blip'));
    const r = await evaluateHybrid(ds, clip, blip, { k1: [3, 6], fusion: ['weighted', 'rrf'], directions: ['textToImage'] });
    assert.equal(r.configs.length, 4);
    const root = tempDir();
    for (const img of ds.images) copyFileSync(img.source as string, join(root, img.id));
    const indexPath = join(tempDir(), 'i.duo');
    await buildIndex({ root, indexPath, encoder: clip, modelSpec: 'colour-clip', reranker: blip, rerankerSpec: 'colour-blip' });
    const engine = await openEngine({ index: indexPath, encoder: clip, reranker: blip });
    for (const q of r.queries) {
      const [user] = await engine.search([{ text: q.query }], { mode: 'hybrid', k1: 6, k: 6, fusion: 'rrf' });
      const at = user!.results.findIndex((h) => h.id === q.relevant[0]) + 1;
      assert.equal(q.hybrid['k1=6 rrf'], at, q.query);
    }
    await engine.close();
    // a caption with no word the model knows is refused by the engine and counted as a miss
    const picky: Encoder = { ...blind, id: clip.id, dim: clip.dim, encodeTexts: (t) => clip.encodeTexts(t), encodeImages: (i) => clip.encodeImages(i), textCoverage: (t) => (t.includes('red') ? { known: [], unknown: t.split(' ') } : { known: [t], unknown: [] }) };
    const refused = await evaluateHybrid(ds, picky, blip, { k1: 6, fusion: 'weighted', directions: ['textToImage'] });
    assert.equal(refused.refused, 1);
    assert.equal(refused.queries.find((q) => q.query.includes('red'))!.hybrid['k1=6 weighted'], Infinity);
    await blip.dispose();
    await clip.dispose();
  });

  it('latency statistics', () => {
    assert.deepEqual(latencyStats([4, 1, 3, 2]), { mean: 2.5, p50: 3, p95: 4, p99: 4 });
  });
});
