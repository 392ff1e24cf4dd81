import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RetrievalDataset } from '../../src/data/dataset.js';
import { evaluateRetrieval } from '../../src/eval/retrieval-eval.js';
import type { Encoder } from '../../src/models/encoder.js';
import { fixtureModelPath, loadEncoder } from '../../src/models/load-encoder.js';
import { colourDataset } from '../helpers.js';

/** An encoder that maps image i and every caption "i" to basis vector i (or a fixed wrong one). */
function oracle(n: number, wrongFor = new Set<number>()): Encoder {
  const basis = (i: number) => Float32Array.from({ length: n }, (_, j) => (j === i ? 1 : 0));
  return {
    id: 'oracle',
    dim: n,
    normalized: true,
    similarity: { kind: 'cosine' },
    encodeTexts: async (t) => t.map((s) => basis(wrongFor.has(Number(s)) ? (Number(s) + 1) % n : Number(s))),
    encodeImages: async (imgs) => imgs.map((src) => basis(Number(String(src)))),
    dispose: async () => {},
  };
}

const dataset = (n: number): RetrievalDataset => ({
  name: 'toy',
  split: 'dev',
  images: Array.from({ length: n }, (_, i) => ({ id: `img${i}`, source: String(i) })),
  captions: Array.from({ length: n * 2 }, (_, c) => ({ imageId: `img${c >> 1}`, text: String(c >> 1) })),
});

describe('evaluateRetrieval', () => {
  it('a perfect encoder scores 100 / MRR 1 in both directions', async () => {
    const r = await evaluateRetrieval(dataset(20), oracle(20));
    assert.equal(r.textToImage['R@1'], 100);
    assert.equal(r.imageToText['R@1'], 100);
    assert.equal(r.textToImage.MRR, 1);
    assert.equal(r.captions, 40);
  });

  it('captions that point at the wrong image lose R@1 by exactly their share', async () => {
    const r = await evaluateRetrieval(dataset(10), oracle(10, new Set([3, 7])));
    // the 4 captions of images 3 and 7 score 1 on the next image and 0 on their own, tied with
    // the 8 others at 0: ties count against, so rank 1 + 1 + 8 = 10
    assert.equal(r.textToImage['R@1'], 80);
    assert.equal(r.textToImage['R@5'], 80);
    assert.equal(r.textToImage['R@10'], 100);
    // images 3 and 7 score 0 on every caption: rank 1 + 18; images 4 and 8 tie their own
    // captions with two stray ones at 1: rank 3
    assert.equal(r.imageToText['R@1'], 60);
    assert.equal(r.imageToText['R@5'], 80);
    assert.equal(r.imageToText['R@10'], 80);
    // 95% intervals resample the 10 images (a caption goes with its image), in both directions
    const t2i = r.textToImage.interval95!;
    assert.deepEqual([t2i.units, r.imageToText.interval95!.units], [10, 10]);
    assert.ok(t2i['R@1'][0] < 80 && t2i['R@1'][1] === 100, `R@1 80 within ${t2i['R@1']}`);
    assert.deepEqual(t2i['R@10'], [100, 100], 'every caption finds its image in the top 10: no spread');
  });

  it('the colour fixture beats chance on colour captions of colour images', async () => {
    const ds = await colourDataset();
    const encoder = await loadEncoder(fixtureModelPath());
    const r = await evaluateRetrieval(ds, encoder);
    assert.equal(r.textToImage['R@1'], 100);
    assert.equal(r.imageToText['R@1'], 100);
    await encoder.dispose();
  });
});
