/** The starter encoder and cross-encoder share one backbone pass per decoded image, without module-level state. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadImage } from '../../src/data/image-loader.js';
import { buildCaptionIndex } from '../../src/index/build-caption-index.js';
import { loadEncoder } from '../../src/models/load-encoder.js';
import { loadReranker } from '../../src/models/load-reranker.js';
import { StarterCrossEncoder } from '../../src/models/starter/starter-cross-encoder.js';
import { StarterEncoder } from '../../src/models/starter/starter-encoder.js';
import { openEngine } from '../../src/search/open-engine.js';
import { COLOURS, tempDir, writeColourImage } from '../helpers.js';
import { packWithCross } from './cross-pack.js';

const packPromise = packWithCross();

async function models() {
  const pack = await packPromise;
  const encoder = await loadEncoder(pack);
  const reranker = await loadReranker(pack);
  assert.ok(encoder instanceof StarterEncoder && reranker instanceof StarterCrossEncoder);
  return { pack, encoder, reranker, passes: () => encoder.backbone.computed + reranker.backbone.computed };
}

async function colourImage(name: keyof typeof COLOURS): Promise<string> {
  const path = join(tempDir(), `${name}.jpg`);
  await writeColourImage(path, COLOURS[name]!);
  return path;
}

describe('one backbone pass per image for both starter models', () => {
  it('the encoder and the cross-encoder share it for one decoded image, even when they ask at once', async () => {
    const { encoder, reranker, passes } = await models();
    assert.equal(encoder.backbone.weightsHash, reranker.backbone.weightsHash);
    const path = await colourImage('red');
    const image = await loadImage(path);
    await Promise.all([encoder.encodeImages([image]), reranker.score({ image }, [{ id: 'c', text: 'a red thing' }])]);
    assert.equal(passes(), 1);
    await reranker.regionsOf([image]);
    assert.equal(passes(), 1);
    await encoder.encodeImages([await loadImage(path)]);
    assert.equal(passes(), 2, 'another decoding of the file is another image, with features of its own');
    await Promise.all([encoder.dispose(), reranker.dispose()]);
  });

  it('features another backbone left on the image are never read', async () => {
    const { encoder, passes } = await models();
    const image = await loadImage(await colourImage('green'));
    const foreign = { pooled: new Float32Array(560), grid: new Float32Array(480 * 16) };
    image.derived = new Map([['starter-backbone:other-weights', Promise.resolve(foreign)]]);
    await encoder.encodeImages([image]);
    assert.equal(passes(), 1);
    assert.deepEqual([...image.derived.keys()], ['starter-backbone:other-weights', `starter-backbone:${encoder.backbone.weightsHash}`]);
    await encoder.dispose();
  });

  it('an aborted call runs no backbone pass and leaves nothing on the image', async () => {
    const { encoder, reranker, passes } = await models();
    const path = await colourImage('yellow');
    const image = await loadImage(path);
    const signal = AbortSignal.abort();
    await assert.rejects(encoder.encodeImages([image], { signal }), { name: 'AbortError' });
    await assert.rejects(reranker.score({ image }, [{ id: 'c', text: 'a yellow thing' }], { signal }), { name: 'AbortError' });
    await assert.rejects(reranker.score({ text: 'a yellow thing' }, [{ id: 'y', image: path }], { signal }), { name: 'AbortError' });
    await assert.rejects(reranker.regionsOf([image], { signal }), { name: 'AbortError' });
    assert.equal(passes(), 0);
    assert.equal(image.derived, undefined);
    await Promise.all([encoder.dispose(), reranker.dispose()]);
  });

  it('a hybrid image query over a caption index runs the backbone once for both stages', async () => {
    const { pack, encoder, reranker, passes } = await models();
    const index = join(tempDir(), 'captions');
    const captions = Object.keys(COLOURS).map((n) => ({ id: n, text: `a ${n} square` }));
    await buildCaptionIndex({ captions, indexPath: index, encoder, modelSpec: pack, source: 'colours' });
    const engine = await openEngine({ index, encoder, reranker });
    const [r] = await engine.search([{ image: await colourImage('blue') }], { mode: 'hybrid', k1: 6, k: 3 });
    assert.equal(r!.fallback, undefined);
    assert.ok(r!.results.every((h) => h.stage2 !== undefined), 'stage 2 ran');
    assert.equal(passes(), 1);
    await engine.close();
    await Promise.all([encoder.dispose(), reranker.dispose()]);
  });
});
