import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { evaluateHybrid, latencyStats } from '../../src/eval/hybrid-eval.js';
import { BlipItmReranker } from '../../src/models/blip/blip-itm.js';
import type { Encoder } from '../../src/models/encoder.js';
import { packageRoot } from '../../src/util/package-root.js';
import { colourDataset } from '../helpers.js';

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
    const one = await evaluateHybrid(ds, blind, blip, { k1: 1, fusion: 'replace', directions: ['textToImage'] });
    assert.ok(one.textToImage!['R@1'] < 50, 'with one candidate, stage 2 can only confirm stage 1');
    assert.equal(one.imageToText, undefined);
    await blip.dispose();
  });

  it('latency statistics', () => {
    assert.deepEqual(latencyStats([4, 1, 3, 2]), { mean: 2.5, p50: 3, p95: 4, p99: 4 });
  });
});
