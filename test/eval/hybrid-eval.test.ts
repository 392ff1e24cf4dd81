import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { evaluateHybrid, latencyStats } from '../../src/eval/hybrid-eval.js';
import { BlipItmReranker } from '../../src/models/blip/blip-itm.js';
import type { Encoder } from '../../src/models/encoder.js';
import type { CrossEncoder } from '../../src/models/reranker.js';
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

  it('an α sweep reorders the same stage-2 scores: one row per α, each what a run with that α alone gives', async () => {
    const ds = await colourDataset((n) => [`a ${n} square`, `something ${n}`]);
    const clip = await loadEncoder(join(packageRoot(), 'models', 'colour-clip'));
    const blip = await BlipItmReranker.load(join(packageRoot(), 'models', 'colour-blip'));
    let calls = 0;
    // BLIP's scores turned upside down: a stage 2 that disagrees with stage 1, so each α ranks differently
    const counted = (fusionAlpha?: CrossEncoder['fusionAlpha']): CrossEncoder => ({
      id: blip.id,
      fusionAlpha,
      score: async (q, c, o) => {
        calls++;
        const r = await blip.score(q, c, o);
        return { ...r, scores: r.scores.map((x) => -x) };
      },
      dispose: async () => {},
    });
    const alphas = [0, 0.5, 1];
    const sweep = await evaluateHybrid(ds, clip, counted(), { k1: [3, 6], fusion: ['weighted', 'rrf'], alpha: alphas });
    const sweepCalls = calls;
    assert.deepEqual(
      sweep.configs.map((c) => [c.k1, c.fusion, c.alpha?.textToImage]),
      [[3, 'weighted', 0], [3, 'weighted', 0.5], [3, 'weighted', 1], [3, 'rrf', undefined], [6, 'weighted', 0], [6, 'weighted', 0.5], [6, 'weighted', 1], [6, 'rrf', undefined]],
    );
    assert.deepEqual(Object.keys(sweep.queries[0]!.hybrid), ['k1=3 weighted α=0', 'k1=3 weighted α=0.5', 'k1=3 weighted α=1', 'k1=3 rrf', 'k1=6 weighted α=0', 'k1=6 weighted α=0.5', 'k1=6 weighted α=1', 'k1=6 rrf']);
    calls = 0;
    const single = await evaluateHybrid(ds, clip, counted(), { k1: 6, fusion: 'weighted', alpha: 0.5 });
    assert.equal(sweepCalls, calls, 'no cross-encoder call more for more α');
    assert.deepEqual(Object.keys(single.queries[0]!.hybrid), ['k1=6 weighted'], 'one α: the names of before');
    for (const alpha of alphas) {
      const one = alpha === 0.5 ? single : await evaluateHybrid(ds, clip, counted(), { k1: 6, fusion: 'weighted', alpha });
      const row = sweep.configs.find((c) => c.k1 === 6 && c.fusion === 'weighted' && c.alpha!.textToImage === alpha)!;
      assert.deepEqual([row.textToImage, row.imageToText], [one.textToImage, one.imageToText], `α ${alpha}`);
    }
    // α = 0 orders by stage 1 alone; α = 1 by the upside-down stage 2 alone, worse
    assert.deepEqual(sweep.configs[0]!.textToImage, sweep.stage1.textToImage);
    assert.deepEqual(sweep.configs[0]!.vsStage1.textToImage!['R@10'], { diff: 0, interval: [0, 0] });
    assert.ok(sweep.configs[2]!.textToImage!.MRR < sweep.configs[0]!.textToImage!.MRR);
    // each row against stage 1 on the same queries, resampling the images (two captions each go together)
    const upsideDown = sweep.configs[2]!.vsStage1.textToImage!;
    assert.equal(upsideDown['R@1'].diff, sweep.configs[2]!.textToImage!['R@1'] - sweep.stage1.textToImage!['R@1']);
    assert.ok(upsideDown['R@1'].diff < 0 && upsideDown['R@1'].interval[0] <= upsideDown['R@1'].diff && upsideDown['R@1'].diff <= upsideDown['R@1'].interval[1]);
    assert.deepEqual([upsideDown.units, sweep.stage1.textToImage!.interval95!.units], [ds.images.length, ds.images.length]);
    assert.ok(sweep.configs[6]!.imageToText!.MRR < sweep.configs[4]!.imageToText!.MRR);
    // no α given: each direction takes the model's own, as the engine does
    const own = await evaluateHybrid(ds, clip, counted({ textToImage: 1, imageToText: 0 }), { k1: 6, fusion: 'weighted' });
    assert.deepEqual(own.alpha, { textToImage: 1, imageToText: 0 });
    assert.deepEqual(own.configs[0]!.alpha, { textToImage: 1, imageToText: 0 });
    assert.deepEqual(own.textToImage, sweep.configs[6]!.textToImage);
    assert.deepEqual(own.imageToText, sweep.configs[4]!.imageToText);
    await blip.dispose();
    await clip.dispose();
  });

  it('latency statistics', () => {
    assert.deepEqual(latencyStats([4, 1, 3, 2]), { mean: 2.5, p50: 3, p95: 4, p99: 4 });
  });
});
