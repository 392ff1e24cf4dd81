/**
 * A backbone built with MobileNetV2 (a second input at 224×224, a mobilenet_mean output):
 * the runner feeds both inputs and returns the extra vector, the feature cache keeps it in a
 * layout of its own, and the feature kinds that read it refuse features without it. The
 * backbone here is a small generated graph with the real one's inputs and outputs.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadImage } from '../../src/data/image-loader.js';
import { BackboneRunner, featureDim, featureVector, POOLED_DIM, GRID_SIZE } from '../../src/models/starter/backbone-runner.js';
import { BACKBONE_DIM, BACKBONE_INPUT, CLASS_DIM, MOBILENET_DIM, MOBILENET_INPUT } from '../../src/models/starter/backbone.js';
import { extractFeatures, FeatureCache } from '../../src/models/starter/feature-cache.js';
import { tinyBackbone } from '../fixtures/tiny-backbone.js';
import { tempDir, writeColourImage } from '../helpers.js';

async function images() {
  const dir = tempDir();
  const paths = [join(dir, 'red.png'), join(dir, 'teal.png')];
  await writeColourImage(paths[0]!, [255, 0, 0], 'png', 300);
  await writeColourImage(paths[1]!, [0, 128, 255], 'png', 300);
  return paths;
}

/** what the tiny graph computes for a solid colour at column j of a `cols`-wide output */
const expected = (rgb: number[], j: number, cols: number) => rgb.reduce((s, v, c) => s + v * (c + 1) * (1 + j / cols) / 255, 0);

describe('a backbone with MobileNetV2', () => {
  it('the runner feeds the 224×224 input and returns mobilenet beside pooled and grid', async () => {
    const runner = await BackboneRunner.load(tinyBackbone(true));
    assert.equal(runner.hasMobilenet, true);
    const decoded = await Promise.all((await images()).map((p) => loadImage(p)));
    const features = await runner.run(decoded);
    /** mean RGB of what the runner should feed at `side` (the files carry a little noise) */
    const meanRgb = async (i: number, side: number) => {
      const px = await BackboneRunner.pixels(decoded[i]!, side);
      assert.equal(px.length, side * side * 3);
      return [0, 1, 2].map((c) => px.reduce((s, v, k) => (k % 3 === c ? s + v : s), 0) / (side * side));
    };
    for (const i of [0, 1]) {
      const [small, big] = [await meanRgb(i, MOBILENET_INPUT), await meanRgb(i, BACKBONE_INPUT)];
      const f = features[i]!;
      assert.equal(f.mobilenet!.length, MOBILENET_DIM);
      for (const j of [0, 700, MOBILENET_DIM - 1]) assert.ok(Math.abs(f.mobilenet![j]! - expected(small, j, MOBILENET_DIM)) < 1e-3, `image ${i} mobilenet[${j}]`);
      assert.ok(Math.abs(f.pooled[3]! - expected(big, 3, BACKBONE_DIM)) < 1e-3, `image ${i} backbone_mean`);
      assert.ok(Math.abs(f.pooled[BACKBONE_DIM + 5]! - expected(big, 5, CLASS_DIM)) < 1e-3, `image ${i} class_max follows backbone_mean`);
    }
    assert.ok(Math.abs(features[0]!.mobilenet![0]! - features[1]!.mobilenet![0]!) > 0.5, 'two colours, two vectors');
    await runner.dispose();
  });

  it('feature kinds: pooled+mobilenet concatenates, mobilenet alone, and a backbone without it is refused', async () => {
    const [red] = await images();
    const withIt = await BackboneRunner.load(tinyBackbone(true));
    const without = await BackboneRunner.load(tinyBackbone(false));
    assert.equal(without.hasMobilenet, false);
    const [f] = await withIt.run([await loadImage(red!)]);
    const both = featureVector(f!, 'pooled+mobilenet');
    assert.equal(both.length, featureDim('pooled+mobilenet'));
    assert.equal(both.length, POOLED_DIM + MOBILENET_DIM);
    assert.deepEqual(both.subarray(0, POOLED_DIM), f!.pooled);
    assert.deepEqual(both.subarray(POOLED_DIM), f!.mobilenet);
    assert.equal(featureVector(f!, 'mobilenet'), f!.mobilenet);
    const [g] = await without.run([await loadImage(red!)]);
    assert.equal(g!.mobilenet, undefined);
    assert.deepEqual(g!.pooled, f!.pooled, 'the CenterNet outputs do not depend on the second branch');
    assert.throws(() => featureVector(g!, 'pooled+mobilenet'), /need a backbone built with MobileNetV2/);
    await Promise.all([withIt.dispose(), without.dispose()]);
  });

  it('the feature cache keeps mobilenet, and never reads a file of the other layout', async () => {
    const paths = await images();
    const runner = await BackboneRunner.load(tinyBackbone(true));
    const dir = tempDir();
    const cache = new FeatureCache(dir, { mobilenet: true });
    const first = await extractFeatures(paths, runner, cache);
    assert.equal(first.computed, 2);
    const again = await extractFeatures(paths, runner, cache);
    assert.equal(again.computed, 0, 'read back from the cache');
    assert.deepEqual(again.features[1]!.mobilenet, first.features[1]!.mobilenet);
    assert.deepEqual(again.features[1]!.grid, first.features[1]!.grid);
    assert.equal(again.features[1]!.grid.length, GRID_SIZE);
    // the same folder read as the plain layout: sizes differ, so every file is recomputed, not misread
    const plain = new FeatureCache(dir);
    const hash = FeatureCache.hash(new Uint8Array(await import('node:fs/promises').then((fs) => fs.readFile(paths[0]!))));
    assert.equal(await plain.get(hash), undefined);
    await assert.rejects(plain.put(hash, first.features[0]!), /do not fit its layout/);
    await runner.dispose();
  });
});
