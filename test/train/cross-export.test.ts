/** Choosing and exporting the starter cross-encoder: dev in both directions, and heads kept from the pack beside new runs. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { crossScores, headRegions, regionInputs } from '../../src/models/starter/cross-scoring.js';
import { loadTensors } from '../../src/models/tensor-file.js';
import type { Prepared } from '../../src/train/cross-data.js';
import { computeStandardiser, initCross } from '../../src/train/cross-init.js';
import { seeded } from '../../src/train/dual-encoder.js';
import { collectHeads } from '../../src/train/export-cross.js';
import { recallSum as rsum } from '../../src/eval/metrics.js';
import { devScore, evaluateCross } from '../../src/train/train-cross.js';
import { tempDir } from '../helpers.js';
import { fakeCrossRun, packWithCross } from '../models/cross-pack.js';

function features(n: number, seed: number) {
  const rand = seeded(seed);
  return Array.from({ length: n }, () => ({ pooled: Float32Array.from({ length: 560 }, () => rand()), grid: Float32Array.from({ length: 480 * 16 }, () => rand()) }));
}

/** Four images, two captions each (caption c is image c >> 1's); stage 1 lists every image for a caption and three captions for an image. */
function dev(): Prepared['dev'] {
  const feats = features(4, 3);
  const rand = seeded(7);
  const captionIds = Array.from({ length: 8 }, () => Int32Array.from({ length: 3 }, () => Math.floor(rand() * 20)));
  return {
    feats,
    captionIds,
    queries: captionIds.map((ids, c) => ({ ids, gt: c >> 1, candidates: [3, 2, 1, 0], stage1: [0.4, 0.3, 0.2, 0.1] })),
    imageQueries: [
      // its captions at positions 1 and 2: stage 1 ranks the first relevant one 2nd
      { image: 0, gt: [0, 1], candidates: [4, 1, 0], stage1: [0.9, 0.5, 0.4] },
      // its own caption first
      { image: 1, gt: [2, 3], candidates: [3, 5, 6], stage1: [0.9, 0.5, 0.4] },
      // none of its captions within k1: no reranking brings them back
      { image: 2, gt: [4, 5], candidates: [0, 1, 2], stage1: [0.9, 0.5, 0.4] },
      { image: 3, gt: [6, 7], candidates: [0, 7], stage1: [0.9, 0.8] },
    ],
  };
}

describe('evaluateCross', () => {
  it('ranks image queries by their first relevant caption, stage 1 and reranked', async () => {
    const d = dev();
    const std = computeStandardiser(d.feats);
    const head = { config: { vocabSize: 20, dim: 8, lambda: 9 }, params: initCross({ vocabSize: 20, dim: 8, lambda: 9 }, 2) };
    const r = await evaluateCross([head], std, d);
    // stage 1, image→text: ranks 2, 1, ∞, 2
    assert.equal(r.imageToText.stage1['R@1'], 25);
    assert.equal(r.imageToText.stage1['R@5'], 75);
    assert.equal(r.imageToText.stage1.queries, 4);
    // stage 2 alone: the first relevant caption by the cross-encoder's own scores
    const regions = await headRegions([head], regionInputs(d.feats, std));
    const expected = await Promise.all(d.imageQueries.map(async (q) => {
      const s = Array.from((await crossScores([head], q.candidates.map((c) => d.captionIds[c]!), [regions[q.image]!])).data);
      const at = q.candidates.flatMap((c, i) => (q.gt.includes(c) ? [i] : []));
      if (at.length === 0) return Infinity;
      return Math.min(...at.map((a) => 1 + s.filter((v, i) => v > s[a]! || (v === s[a]! && i < a)).length));
    }));
    assert.equal(r.imageToText.replace['R@1'], (100 * expected.filter((x) => x === 1).length) / 4);
    // text→image: stage 1 puts image 3 first, so captions 6 and 7 are right at rank 1
    assert.equal(r.textToImage.stage1['R@1'], 25);
    assert.equal(r.textToImage.rsum, rsum(r.textToImage.weighted));
    assert.ok([0.3, 0.4, 0.5, 0.6, 0.7, 0.8].includes(r.imageToText.alpha));
    assert.equal(devScore(r, ['textToImage']), r.textToImage.rsum);
    assert.equal(devScore(r, ['textToImage', 'imageToText']), r.textToImage.rsum + r.imageToText.rsum);
  });
});

describe('collectHeads', () => {
  it("keeps the pack's heads first and adds the run's, on the longest vocabulary", async () => {
    const pack = await packWithCross();
    const t = await loadTensors(join(pack, 'cross_encoder.bin'));
    const std = new Map([...t].filter(([k]) => k.startsWith('std.')).map(([k, v]) => [k.slice(4), v]));
    const words = JSON.parse(readFileSync(join(pack, 'vocab.json'), 'utf8')) as string[];
    const run = join(tempDir(), 'new');
    await fakeCrossRun(run, words, std);

    const { heads, longest } = await collectHeads({ runDirs: [run], pack, keepHeads: true });
    assert.deepEqual(heads.map((h) => h.dir), [`${pack}#h0`, `${pack}#h1`, run]);
    assert.equal(longest.dir, `${pack}#h1`); // the head with word pairs
    assert.deepEqual(heads.map((h) => h.head.config.vocabSize), [words.length, longest.tokens.length, words.length]);
    assert.deepEqual(heads[0]!.head.params.get('cell.b'), t.get('h0.cell.b'));
    assert.equal(heads[2]!.entry.biEncoder, 'starter-test');
    assert.equal(heads[2]!.entry.bestEpoch, 4);
    assert.equal(heads[2]!.head.params.has('logScale'), false);

    const alone = await collectHeads({ runDirs: [run], pack });
    assert.deepEqual(alone.heads.map((h) => h.dir), [run]);
  });

  it('refuses a run whose standardiser differs from the kept heads', async () => {
    const pack = await packWithCross();
    const words = JSON.parse(readFileSync(join(pack, 'vocab.json'), 'utf8')) as string[];
    const run = join(tempDir(), 'other');
    await fakeCrossRun(run, words, new Map(Object.entries(computeStandardiser(features(2, 9)))));
    await assert.rejects(collectHeads({ runDirs: [run], pack, keepHeads: true }), /standardiser/);
  });
});
