import assert from 'node:assert/strict';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { buildIndex } from '../../src/index/build-index.js';
import { ExactStore } from '../../src/index/exact-store.js';
import { loadEncoder } from '../../src/models/load-encoder.js';
import { loadReranker } from '../../src/models/load-reranker.js';
import { fusionAlphaOf, StarterCrossEncoder } from '../../src/models/starter/starter-cross-encoder.js';
import { openEngine } from '../../src/search/open-engine.js';
import { crossScores } from '../../src/models/starter/cross-scoring.js';
import { initCross } from '../../src/train/cross-init.js';
import { fromHalf, toHalf } from '../../src/util/float16.js';
import { runRerankerContract } from '../contracts/reranker.contract.js';
import { packWithCross } from './cross-pack.js';
import { COLOURS, tempDir, writeColourImage } from '../helpers.js';

const packPromise = packWithCross();
runRerankerContract('starter cross-encoder (random weights)', async () => loadReranker(await packPromise));

describe('starter cross-encoder in the engine', () => {
  it('stores regions at index time, so stage 2 runs without the image files', async () => {
    const pack = await packPromise;
    const root = join(tempDir(), 'photos');
    mkdirSync(root);
    const names = Object.keys(COLOURS);
    await Promise.all(names.map((n) => writeColourImage(join(root, `${n}.jpg`), COLOURS[n]!)));
    const encoder = await loadEncoder(pack);
    const reranker = await loadReranker(pack);
    assert.ok(reranker instanceof StarterCrossEncoder);
    const indexPath = join(tempDir(), 'i.duo');
    await buildIndex({ root, indexPath, encoder, modelSpec: pack, reranker, rerankerSpec: pack });
    assert.ok(existsSync(join(indexPath, '000001.stage2')));
    const store = await ExactStore.open(indexPath);
    assert.deepEqual(store.info.reranker, { id: reranker.id, spec: pack, regionSize: 17 * (16 + 8) });
    const ids = names.map((n) => `${n}.jpg`);
    const stored = await store.regions(ids);
    assert.ok(stored.every((r) => r?.length === 17 * (16 + 8)), "both heads' regions, head after head, for every image");
    const red = stored[ids.indexOf('red.jpg')]!;
    for (const [offset, dim] of [[0, 16], [17 * 16, 8]] as const) {
      for (let j = 0; j < 17; j++) {
        const norm = Math.hypot(...red.subarray(offset + j * dim, offset + (j + 1) * dim));
        assert.ok(Math.abs(norm - 1) < 2e-3, `region ${j} has length ${norm}: regions are stored unit length`);
      }
    }
    await store.close();
    assert.deepEqual(reranker.fusionAlpha, { textToImage: 0.7, imageToText: 0.7 }, "the pack's one α comes with the model, for both directions");

    const direct = await reranker.score({ text: 'a red shirt' }, [{ id: 'x', image: join(root, 'red.jpg') }]);
    rmSync(root, { recursive: true }); // from here on, any backbone pass over an indexed image would fail
    const engine = await openEngine({ index: indexPath, encoder, reranker });
    const [r] = await engine.search([{ text: 'a red shirt' }], { mode: 'hybrid', k1: 6, k: 6 });
    assert.equal(r!.fallback, undefined);
    assert.equal(r!.results.length, 6);
    const hit = r!.results.find((h) => h.id === 'red.jpg')!;
    assert.ok(Math.abs(hit.stage2!.score - direct.scores[0]!) < 1e-2, 'fp16 regions give the same score as fresh ones, to fp16 precision');
    await engine.close();
  });
});

describe('fusion α in the manifest', () => {
  it('alpha for text→image, alphaImageToText for image→text when present, else alpha', () => {
    assert.deepEqual(fusionAlphaOf({ mode: 'weighted', alpha: 0.7 }), { textToImage: 0.7, imageToText: 0.7 });
    assert.deepEqual(fusionAlphaOf({ mode: 'weighted', alpha: 0.7, alphaImageToText: 0.4 }), { textToImage: 0.7, imageToText: 0.4 });
    assert.equal(fusionAlphaOf(undefined), undefined);
    assert.throws(() => fusionAlphaOf({ mode: 'weighted', alpha: 0.7, alphaImageToText: 1.5 }, '/p/manifest.json'), /\/p\/manifest\.json.*crossEncoder\.fusion\.alphaImageToText must be a number from 0 to 1, got 1\.5/);
    assert.throws(() => fusionAlphaOf({ mode: 'weighted', alpha: '0.7' as unknown as number }), /crossEncoder\.fusion\.alpha must be/);
  });
});

describe('cross-encoder heads', () => {
  it('score the mean of the heads; a word-only head skips the pair ids it has no row for', async () => {
    const a = { config: { vocabSize: 3, dim: 4, lambda: 5 }, params: initCross({ vocabSize: 3, dim: 4, lambda: 5 }, 1) };
    const b = { config: { vocabSize: 5, dim: 2, lambda: 9 }, params: initCross({ vocabSize: 5, dim: 2, lambda: 9 }, 2) };
    const rand = () => Float32Array.from({ length: 17 * 6 }, (_, i) => Math.sin(i * 1.7 + 0.3));
    const images = [rand(), rand().map((x) => -x)];
    const caption = Int32Array.from([1, 2, 4]); // id 4 is a pair only head b knows
    const both = await crossScores([a, b], [caption], images);
    const onlyA = await crossScores([a], [Int32Array.from([1, 2])], images.map((r) => r.subarray(0, 17 * 4)));
    const onlyB = await crossScores([b], [caption], images.map((r) => r.subarray(17 * 4)));
    for (let i = 0; i < 2; i++) assert.ok(Math.abs(both.data[i]! - (onlyA.data[i]! + onlyB.data[i]!) / 2) < 1e-6);
  });
});

describe('fp16 storage', () => {
  it('round-trips within half precision and keeps special values', () => {
    const x = Float32Array.from([0, 1, -2.5, 3.14159, 1e-5, 65504, 1e6, -1e-8]);
    const y = fromHalf(toHalf(x));
    [0, 1, -2.5].forEach((v, i) => assert.equal(y[i], v));
    assert.ok(Math.abs(y[3]! - 3.14159) < 2e-3);
    assert.ok(Math.abs(y[4]! - 1e-5) < 1e-7);
    assert.equal(y[5], 65504);
    assert.equal(y[6], Infinity);
    assert.ok(Math.abs(y[7]!) < 1e-7);
  });
});
