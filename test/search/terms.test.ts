/** Weighted and negative query terms through the engine, over solid-colour images and the colour fixtures. */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildIndex } from '../../src/index/build-index.js';
import { BlipItmReranker } from '../../src/models/blip/blip-itm.js';
import type { Encoder } from '../../src/models/encoder.js';
import { loadEncoder } from '../../src/models/load-encoder.js';
import type { CrossEncoder } from '../../src/models/reranker.js';
import { DuoError } from '../../src/errors.js';
import { combineTerms, type SearchEngine } from '../../src/search/engine.js';
import { openEngine } from '../../src/search/open-engine.js';
import { packageRoot } from '../../src/util/package-root.js';
import { COLOURS, tempDir, writeColourImage } from '../helpers.js';

const CLIP = join(packageRoot(), 'models', 'colour-clip');
const BLIP = join(packageRoot(), 'models', 'colour-blip');
const ids = (r: { results: { id: string }[] }) => r.results.map((h) => h.id);
const refusedAs = (field: RegExp) => (e: unknown) => e instanceof DuoError && e.code === 'BAD_ARGUMENT' && field.test(e.message);

describe('weighted query terms', () => {
  const root = join(tempDir(), 'photos');
  const indexPath = join(tempDir(), 'photos.duo');
  let encoder: Encoder;
  let blip: CrossEncoder;
  let engine: SearchEngine;
  before(async () => {
    mkdirSync(root, { recursive: true });
    await Promise.all(Object.keys(COLOURS).map((n) => writeColourImage(join(root, `${n}.jpg`), COLOURS[n]!)));
    encoder = await loadEncoder(CLIP);
    blip = await BlipItmReranker.load(BLIP);
    await buildIndex({ root, indexPath, encoder, modelSpec: CLIP, reranker: blip, rerankerSpec: BLIP });
    engine = await openEngine({ index: indexPath, encoder, reranker: blip });
  });
  after(async () => {
    await engine.close();
    await blip.dispose();
    await encoder.dispose();
  });

  it('the embedding is the normalised weighted sum of the terms’ unit embeddings', async () => {
    const [yellow, red] = await encoder.encodeTexts(['yellow', 'red']);
    const [v] = await engine.embed([{ terms: [{ weight: 2, text: 'yellow' }, { weight: -1, text: 'red' }] }]);
    const want = yellow!.map((y, d) => 2 * y - red![d]!);
    const norm = Math.hypot(...want);
    v!.forEach((x, d) => assert.ok(Math.abs(x - want[d]! / norm) < 1e-5, `dimension ${d}: ${x} vs ${want[d]! / norm}`));
    assert.ok(Math.abs(Math.hypot(...v!) - 1) < 1e-5);
  });

  it('a negative term moves results away from it: "yellow" - "red" ranks green first and red last', async () => {
    const [plain] = await engine.search([{ text: 'yellow' }], { k: 6 });
    assert.deepEqual(ids(plain!).slice(0, 2), ['yellow.jpg', 'red.jpg'], 'yellow alone: red is the runner-up');
    const [minus] = await engine.search([{ terms: [{ weight: 1, text: 'yellow' }, { weight: -1, text: 'red' }] }], { k: 6 });
    assert.equal(ids(minus!)[0], 'green.jpg');
    assert.equal(ids(minus!).at(-1), 'red.jpg');
    assert.equal(minus!.query, '"yellow" - "red"');
  });

  it('refuses terms that cancel out, all-zero weights and empty terms, naming the field', async () => {
    await assert.rejects(engine.search([{ terms: [{ weight: 1, text: 'red' }, { weight: -1, text: 'red' }] }]), refusedAs(/^terms: the weighted sum .* is \(nearly\) zero/));
    await assert.rejects(engine.search([{ terms: [{ weight: 0, text: 'red' }, { weight: 0, text: 'blue' }] }]), refusedAs(/^terms: every weight is 0/));
    await assert.rejects(engine.search([{ terms: [{ weight: 1, text: 'red' }, { weight: 1, text: '  ' }] }]), refusedAs(/^terms\.1\.text: is empty/));
    await assert.rejects(engine.search([{ terms: [{ weight: Number.NaN, text: 'red' }] }]), refusedAs(/^terms\.0\.weight: is not a finite number/));
    await assert.rejects(engine.search([{ terms: [] }]), refusedAs(/^terms: needs at least one term/));
    assert.throws(() => combineTerms([{ weight: 1, text: 'a' }, { weight: -1, text: 'b' }], [new Float32Array([1, 0]), new Float32Array([1, 0])]), refusedAs(/^terms:/));
  });

  it('an item term: its stored vector, the item itself left out of the results', async () => {
    const [r] = await engine.search([{ terms: [{ weight: 1, item: 'yellow.jpg' }, { weight: -1, text: 'red' }] }], { k: 6 });
    assert.ok(!ids(r!).includes('yellow.jpg'));
    assert.equal(ids(r!)[0], 'green.jpg');
    assert.equal(ids(r!).at(-1), 'red.jpg');
  });

  it('hybrid: stage 2 is the weighted sum of the cross-encoder’s scores for the text terms', async () => {
    const [r] = await engine.search([{ terms: [{ weight: 1, text: 'yellow' }, { weight: -1, text: 'red' }] }], { mode: 'hybrid', k: 6, k1: 6, fusion: 'replace' });
    assert.equal(r!.fallback, undefined);
    const candidates = r!.results.map((h) => ({ id: h.id, image: join(root, h.id), stage1Score: h.stage1.score }));
    const [yellow, red] = [await blip.score({ text: 'yellow' }, candidates), await blip.score({ text: 'red' }, candidates)];
    r!.results.forEach((h, i) => assert.ok(Math.abs(h.stage2!.score - (yellow.scores[i]! - red.scores[i]!)) < 1e-3, `${h.id}: ${h.stage2!.score}`));
    assert.equal(ids(r!).at(-1), 'red.jpg', 'the negative term keeps red last after rescoring');
  });

  it('hybrid without a positive text term falls back to stage 1, marked', async () => {
    const [r] = await engine.search([{ terms: [{ weight: 1, item: 'yellow.jpg' }, { weight: -1, text: 'red' }] }], { mode: 'hybrid', k: 3 });
    assert.match(r!.fallback ?? '', /without a positive text term/);
    assert.equal(r!.results[0]!.stage2, undefined);
  });

  it('responses are cached by the terms with their weights', async () => {
    const q = (w: number) => ({ terms: [{ weight: 1, text: 'yellow' }, { weight: w, text: 'red' }] });
    await engine.search([q(-1)], { k: 6 });
    const [again] = await engine.search([q(-1)], { k: 6 });
    assert.equal(again!.cached, true);
    const [other] = await engine.search([q(-0.2)], { k: 6 });
    assert.equal(other!.cached, undefined, 'another weight is another query');
    assert.notDeepEqual(ids(other!), ids(again!));
  });
});
