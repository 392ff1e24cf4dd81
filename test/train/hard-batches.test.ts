/** The cross-encoder's batch builder: hard negatives from a caption's wrong images and from an image's wrong captions. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hardBatches, type BatchItem, type HardDirection, type Prepared } from '../../src/train/cross-data.js';
import { seeded } from '../../src/train/dual-encoder.js';

const IMAGES = 60;

/** Two captions per image; caption c belongs to image c >> 1. Each caption's hard images are the next three images (t2i); each image's hard captions are those of the three images before it, plus one of its own to check they are never used as negatives. */
function fixture(): { train: Prepared['train']; captionsOf: number[][] } {
  const captionImage = Array.from({ length: IMAGES * 2 }, (_, c) => c >> 1);
  const captionsOf = Array.from({ length: IMAGES }, (_, i) => [2 * i, 2 * i + 1]);
  const hard = captionImage.map((img) => Int32Array.from([1, 2, 3], (k) => (img + k) % IMAGES));
  const hardCaptions = Array.from({ length: IMAGES }, (_, img) => Int32Array.from([1, 2, 3].flatMap((k) => captionsOf[(img - k + IMAGES) % IMAGES]!)));
  return { train: { feats: new Array(IMAGES).fill(undefined) as never, ids: [], captionImage, hard, hardCaptions }, captionsOf };
}

const build = (directions: readonly HardDirection[], seed: number, hard = 1) => {
  const { train, captionsOf } = fixture();
  return hardBatches(train, captionsOf, 8, hard, seeded(seed), directions);
};

/** How many items of each kind: a t2i neighbour (the image after the previous item's) or an i2t one (a fixed caption). */
function kinds(batches: BatchItem[][]) {
  let t2i = 0;
  let i2t = 0;
  for (const b of batches) {
    for (let k = 1; k < b.length; k++) {
      const prev = b[k - 1]!.image;
      if (b[k]!.caption !== undefined) i2t++;
      else if ([1, 2, 3].some((d) => (prev + d) % IMAGES === b[k]!.image)) t2i++;
    }
  }
  return { t2i, i2t };
}

describe('hardBatches', () => {
  for (const directions of [['textToImage'], ['imageToText'], ['textToImage', 'imageToText']] as HardDirection[][]) {
    it(`never puts an image twice in a batch (${directions.join('+')})`, () => {
      for (const seed of [1, 2, 3]) {
        for (const b of build(directions, seed)) {
          assert.equal(new Set(b.map((x) => x.image)).size, b.length);
          assert.ok(b.length >= 2 && b.length <= 8);
        }
      }
    });
    it(`is the same for the same seed (${directions.join('+')})`, () => {
      assert.deepEqual(build(directions, 5), build(directions, 5));
      assert.notDeepEqual(build(directions, 5), build(directions, 6));
    });
  }

  it('image→text neighbours come with the hard caption, which belongs to the image added, never to the seed', () => {
    const { train } = fixture();
    let fixed = 0;
    for (const b of build(['imageToText'], 1)) {
      b.forEach((x, k) => {
        if (x.caption === undefined) return;
        fixed++;
        assert.equal(train.captionImage[x.caption], x.image);
        // the seed just before it: the caption is one of the seed's hard captions, not its own
        const seed = b[k - 1]!.image;
        assert.ok(train.hardCaptions![seed]!.includes(x.caption));
        assert.notEqual(x.image, seed);
      });
    }
    assert.ok(fixed > 10, `${fixed} image→text hard negatives`);
  });

  it('textToImage alone fixes no caption; both directions use both pools', () => {
    assert.equal(kinds(build(['textToImage'], 1)).i2t, 0);
    assert.ok(kinds(build(['textToImage'], 1)).t2i > 10);
    const both = kinds(build(['textToImage', 'imageToText'], 1));
    assert.ok(both.t2i > 5 && both.i2t > 5, JSON.stringify(both));
  });

  it('covers every image once per call as a seed or a neighbour, at most once', () => {
    const seen = build(['textToImage', 'imageToText'], 4).flat().map((x) => x.image);
    // a neighbour can come back later as a seed in another batch, but every image is there
    assert.equal(new Set(seen).size, IMAGES);
  });

  it('refuses image→text without mined captions', () => {
    const { train, captionsOf } = fixture();
    delete train.hardCaptions;
    assert.throws(() => hardBatches(train, captionsOf, 8, 0.5, seeded(1), ['imageToText']), /not mined/);
  });
});
