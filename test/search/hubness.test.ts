/**
 * Hubness correction with a query bank (src/models/query-bank.ts): the log-sum-exp and its
 * stability, what indexing stores, what the engine and evaluation subtract, which queries it
 * applies to, and how a bad bank entry is refused.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { buildCaptionIndex } from '../../src/index/build-caption-index.js';
import { buildIndex } from '../../src/index/build-index.js';
import { readCaptionFile } from '../../src/data/caption-file.js';
import { evaluateEmbeddings } from '../../src/eval/retrieval-eval.js';
import type { Encoder } from '../../src/models/encoder.js';
import { loadEncoder } from '../../src/models/load-encoder.js';
import { correctedScores, HUBNESS_KEY, HUBNESS_POOL, hubnessOf, loadQueryBank, type QueryBank } from '../../src/models/query-bank.js';
import { saveTensors } from '../../src/models/tensor-file.js';
import { openEngine } from '../../src/search/open-engine.js';
import { SearchEngine } from '../../src/search/engine.js';
import { ExactStore } from '../../src/index/exact-store.js';
import { BlipItmReranker } from '../../src/models/blip/blip-itm.js';
import { DuoError } from '../../src/errors.js';
import { packageRoot } from '../../src/util/package-root.js';
import { COLOURS, tempDir, writeColourImage, wrapEncoder } from '../helpers.js';

const CLIP = join(packageRoot(), 'models', 'colour-clip');
const BLIP = join(packageRoot(), 'models', 'colour-blip');
const dotOf = (a: Float32Array, b: Float32Array) => a.reduce((s, x, i) => s + x * b[i]!, 0);

describe('hubness of a vector against a bank', () => {
  it('is (1/β)·log Σ exp(β·cos), computed without overflow at a large β', () => {
    const bank = Float32Array.from([1, 0, 0, 1, 0.6, 0.8]);
    const v = Float32Array.from([0.8, 0.6]);
    const cos = [0.8, 0.6, 0.96];
    for (const beta of [1, 5, 20]) {
      const direct = Math.log(cos.reduce((s, c) => s + Math.exp(beta * c), 0)) / beta;
      assert.ok(Math.abs(hubnessOf([v], bank, 2, beta)[0]! - direct) < 1e-6, `β ${beta}`); // float32 inputs
    }
    // β 5000: exp(4800) overflows a double, the shifted sum does not; it tends to the largest cosine
    const h = hubnessOf([v], bank, 2, 5000)[0]!;
    assert.ok(Number.isFinite(h) && Math.abs(h - 0.96) < 1e-3, String(h));
  });

  it('corrected scores subtract λ·h where an item has one, and leave items without one alone', () => {
    assert.deepEqual(correctedScores([0.5, 0.4, 0.3], [0.2, undefined, 0.1], 0.5), [0.4, 0.4, 0.25]);
  });
});

describe('a pack entry for a query bank', () => {
  it('is refused naming the field or file when it is wrong', async () => {
    const dir = tempDir();
    await saveTensors(join(dir, 'bank.bin'), new Map([['texts', new Float32Array(6)], ['images', new Float32Array(4)]]));
    const good = { file: 'bank.bin', texts: 3, images: 2, beta: 20, lambda: 0.5 };
    const bank = await loadQueryBank(dir, good, 2);
    assert.equal(bank.texts.length, 6);
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ ...good, beta: 0 }, /queryBank\.beta/],
      [{ ...good, lambda: -1 }, /queryBank\.lambda/],
      [{ ...good, file: '../bank.bin' }, /queryBank\.file/],
      [{ ...good, texts: 4 }, /does not hold 4 text and 2 image rows of 2/],
      [{ ...good, file: 'missing.bin' }, /missing\.bin/],
    ];
    for (const [entry, message] of cases) {
      await assert.rejects(loadQueryBank(dir, entry as typeof good, 2), (e: DuoError) => e instanceof DuoError && message.test(e.message), String(message));
    }
  });
});

describe('hubness correction in indexing, search and evaluation', () => {
  const root = join(tempDir(), 'photos');
  let clip: Encoder;
  /** the fixture CLIP with a bank of "red" captions (red images are its hubs) and images of every colour */
  let banked: (lambda: number) => Encoder;
  let bank: QueryBank;
  before(async () => {
    mkdirSync(root, { recursive: true });
    await Promise.all(Object.entries(COLOURS).map(([n, rgb]) => writeColourImage(join(root, `${n}.jpg`), rgb)));
    await writeColourImage(join(root, 'red2.jpg'), [200, 40, 40]);
    clip = await loadEncoder(CLIP);
    const flat = (rows: Float32Array[]) => {
      const out = new Float32Array(rows.length * clip.dim);
      rows.forEach((r, i) => out.set(r, i * clip.dim));
      return out;
    };
    const texts = flat(await clip.encodeTexts(['red', 'a red thing', 'something red', 'red red']));
    const images = flat(await clip.encodeImages(Object.keys(COLOURS).map((n) => join(root, `${n}.jpg`))));
    bank = { texts, images, dim: clip.dim, beta: 10, lambda: 0 };
    banked = (lambda) => wrapEncoder(clip, { queryBank: { ...bank, lambda } });
  });

  it('indexing stores each image its hubness against the bank captions; a text search ranks by cosine − λ·h', async () => {
    const index = join(tempDir(), 'photos.duo');
    await buildIndex({ root, indexPath: index, encoder: banked(0.5), modelSpec: CLIP });
    const plain = await openEngine({ index, encoder: banked(0), reranker: 'none' });
    const corrected = await openEngine({ index, encoder: banked(5), reranker: 'none' });
    try {
      const [raw] = await plain.search([{ text: 'something red' }], { k: 3 });
      const [fixed] = await corrected.search([{ text: 'something red' }], { k: 7 });
      const [q] = await clip.encodeTexts(['something red']);
      for (const r of fixed!.results) {
        const [v] = await clip.encodeImages([r.path!]);
        const h = r.metadata[HUBNESS_KEY] as number;
        assert.ok(Math.abs(h - hubnessOf([v!], bank.texts, clip.dim, bank.beta)[0]!) < 1e-5, `${r.id}: stored hubness`);
        assert.ok(Math.abs(r.score - (dotOf(q!, v!) - 5 * h)) < 1e-4, `${r.id}: score is cosine − λ·h`);
      }
      const scores = fixed!.results.map((r) => r.score);
      assert.deepEqual(scores, [...scores].sort((a, b) => b - a), 'ordered by the corrected score');
      assert.match(raw!.results[0]!.id, /^red2?\.jpg$/, 'without the correction a red image comes first');
      assert.doesNotMatch(fixed!.results[0]!.id, /^red2?\.jpg$/, 'red images, the hubs of a bank of red captions, lose their place at λ 5');
      // an image query over images is not cross-modal: plain cosines
      const [byImage] = await corrected.search([{ image: join(root, 'green.jpg') }], { k: 2 });
      const [g] = await clip.encodeImages([join(root, 'green.jpg')]);
      const [top] = await clip.encodeImages([byImage!.results[0]!.path!]);
      assert.ok(Math.abs(byImage!.results[0]!.score - dotOf(g!, top!)) < 1e-4);
    } finally {
      await Promise.all([plain.close(), corrected.close()]);
    }
  });

  it('hybrid search: stage 2 gets the top k1 by the corrected score, out of the top HUBNESS_POOL the store returns', async () => {
    const blip = await BlipItmReranker.load(BLIP);
    const index = join(tempDir(), 'photos-hybrid.duo');
    try {
      await buildIndex({ root, indexPath: index, encoder: banked(5), modelSpec: CLIP, reranker: blip, rerankerSpec: BLIP });
      const engine = await openEngine({ index, encoder: banked(5), reranker: blip });
      try {
        const [stage1] = await engine.search([{ text: 'something red' }], { k: 7 });
        const [hybrid] = await engine.search([{ text: 'something red' }], { mode: 'hybrid', k: 3, k1: 3 });
        assert.equal(HUBNESS_POOL, 200);
        assert.deepEqual(new Set(hybrid!.results.map((r) => r.id)), new Set(stage1!.results.slice(0, 3).map((r) => r.id)), 'the corrected top 3, not the raw top 3');
        assert.ok(hybrid!.results.every((r) => r.stage2 && r.stage1.rank <= 3));
      } finally {
        await engine.close();
      }
    } finally {
      await blip.dispose();
    }
  });

  it("reads every candidate's metadata for the correction, and vectors only for the k1 MMR compares", async () => {
    const index = join(tempDir(), 'photos-reads.duo');
    await buildIndex({ root, indexPath: index, encoder: banked(5), modelSpec: CLIP });
    const store = await ExactStore.open(index);
    const vectorReads: string[][] = [];
    const metadataReads: string[][] = [];
    const counted = new Proxy(store, {
      get(target, property) {
        if (property === 'get') return async (ids: string[]) => (vectorReads.push(ids), target.get(ids));
        if (property === 'metadataOf') return async (ids: string[]) => (metadataReads.push(ids), target.metadataOf(ids));
        const value: unknown = Reflect.get(target, property);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const engine = new SearchEngine({ store: counted, encoder: banked(5) }, { cacheBytes: { embeddings: 0, responses: 0 } });
    try {
      const held = Object.keys(COLOURS).length + 1;
      const [plain] = await engine.search([{ text: 'something red' }], { k: 2 });
      assert.equal(vectorReads.length, 0, 'plain stage 1 reads no vector');
      assert.deepEqual(metadataReads.map((ids) => ids.length), [held], 'the metadata of all the store returned (its top HUBNESS_POOL: every item here)');
      assert.equal(plain!.results.length, 2);
      for (const r of plain!.results) assert.deepEqual(r.metadata, (await store.get([r.id]))[0]!.metadata, `${r.id} carries its own metadata after the reorder`);
      const [diverse] = await engine.search([{ text: 'something red' }], { k: 2, k1: 4, mmr: 0.5 });
      assert.deepEqual(vectorReads.map((ids) => ids.length), [4], 'MMR reads the vectors of its k1 candidates alone');
      for (const r of diverse!.results) assert.deepEqual(r.metadata, (await store.get([r.id]))[0]!.metadata, `${r.id}: its own metadata with MMR`);
    } finally {
      await store.close();
    }
  });

  it('a caption index stores each caption its hubness against the bank images; an image query subtracts it', async () => {
    const file = join(tempDir(), 'captions.jsonl');
    writeFileSync(file, Object.keys(COLOURS).map((n, i) => JSON.stringify({ id: `c${i}`, text: `a ${n} square` })).join('\n'));
    const index = join(tempDir(), 'captions.duo');
    await buildCaptionIndex({ captions: await readCaptionFile(file), indexPath: index, encoder: banked(1), modelSpec: CLIP, source: file });
    const engine = await openEngine({ index, encoder: banked(1), reranker: 'none' });
    try {
      const [r] = await engine.search([{ image: join(root, 'blue.jpg') }], { k: 6 });
      const [v] = await clip.encodeImages([join(root, 'blue.jpg')]);
      for (const hit of r!.results) {
        const [t] = await clip.encodeTexts([hit.text!]);
        const h = hit.metadata[HUBNESS_KEY] as number;
        assert.ok(Math.abs(h - hubnessOf([t!], bank.images, clip.dim, bank.beta)[0]!) < 1e-5);
        assert.ok(Math.abs(hit.score - (dotOf(v!, t!) - h)) < 1e-4);
      }
    } finally {
      await engine.close();
    }
  });

  it('evaluation subtracts λ·h within each query\'s top pool by cosine, as the engine does', () => {
    // two captions of image 1; image 0 is a hub: without the correction caption 1 finds it first (0.95 against 0.947)
    const images = [Float32Array.from([1, 0]), Float32Array.from([0.8, 0.6])];
    const texts = [Float32Array.from([0.9, 0.436]), Float32Array.from([0.95, 0.312])];
    assert.equal(evaluateEmbeddings(images, texts, [1, 1]).textToImage['R@1'], 50);
    const fixed = evaluateEmbeddings(images, texts, [1, 1], texts, { images: [0.5, 0], captions: [0, 0], lambda: 1, pool: 2 });
    assert.equal(fixed.textToImage['R@1'], 100, 'with the hub pushed down both captions find image 1');
    assert.equal(evaluateEmbeddings(images, texts, [1, 1], texts, { images: [0.5, 0], captions: [0, 0], lambda: 0, pool: 2 }).textToImage['R@1'], 50, 'λ 0 changes nothing');
    // as the engine: only the top `pool` by cosine are corrected, and they stay ahead of the rest
    // (caption 1's top 1 is the hub, which keeps its place however low its corrected score)
    assert.equal(evaluateEmbeddings(images, texts, [1, 1], texts, { images: [0.5, 0], captions: [0, 0], lambda: 1, pool: 1 }).textToImage['R@1'], 50);
  });
});
