/** Every hand-written gradient against central finite differences (float64 loss via tiny sizes). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DualEncoderConfig } from '../../src/models/starter/head-spec.js';
import { initDualEncoder, lossAndGrads, mat, seeded } from '../../src/train/dual-encoder.js';
import { matmul, matmulJs } from '../../src/models/mat.js';
import type { Params } from '../../src/models/tensor-file.js';
import { gruBackward, gruForward, initGru } from '../../src/train/gru.js';
import { initCross } from '../../src/train/cross-init.js';
import { batchStep } from '../../src/train/train-cross.js';
import { globalDim } from '../../src/models/starter/cross-scoring.js';

function batch(config: DualEncoderConfig, B: number, seed: number) {
  const rand = seeded(seed);
  const x = mat(B, config.imageDim, Float32Array.from({ length: B * config.imageDim }, () => rand() * 2 - 1));
  const texts = Array.from({ length: B }, (_, i) => Int32Array.from({ length: 1 + (i % 3) }, () => Math.floor(rand() * Math.max(1, config.vocabSize))));
  texts[B - 1] = Int32Array.from([2, 2, 5]); // a repeated word counts twice in the mean
  return { x, texts };
}

const variants: [string, DualEncoderConfig][] = [
  ['linear heads, word vectors', { imageDim: 5, vocabSize: 7, wordDim: 4, embedDim: 3, head: 'linear', hidden: 6 }],
  ['MLP heads, word vectors', { imageDim: 5, vocabSize: 7, wordDim: 4, embedDim: 3, head: 'mlp', hidden: 6 }],
  // captions of 1–3 words: the packed steps run 5, then 3, then 2 captions
  ['MLP heads, GRU over word vectors', { imageDim: 5, vocabSize: 7, wordDim: 4, embedDim: 3, head: 'mlp', hidden: 6, textEncoder: { kind: 'gru', hidden: 5 } }],
  ['residual linear heads, dense text', { imageDim: 4, vocabSize: 0, wordDim: 0, textDim: 4, embedDim: 4, head: 'linear', hidden: 6, residual: true }],
  ['residual MLP heads, dense text', { imageDim: 4, vocabSize: 0, wordDim: 0, textDim: 4, embedDim: 4, head: 'mlp', hidden: 6, residual: true }],
];

for (const [label, config] of variants) {
  describe(`dual encoder gradients (${label})`, () => {
    it('match finite differences for every parameter tensor', async () => {
      const model = initDualEncoder(config, 3);
      model.params.get('logScale')![0] = 1.2; // keep the softmax soft so differences are informative
      // residual heads start with a zero last layer: move off it so every path carries gradient
      const jitter = seeded(99);
      for (const [name, p] of model.params) if (name !== 'logScale') for (let i = 0; i < p.length; i++) p[i]! += (jitter() - 0.5) * 0.3;
      const b = batch(config, 5, 11);
      const x = b.x;
      const texts = config.vocabSize > 0 ? b.texts : mat(5, config.textDim!, Float32Array.from({ length: 5 * config.textDim! }, () => jitter() * 2 - 1));
      const { grads } = await lossAndGrads(model, x, texts);
      const eps = 1e-3;
      let checked = 0;
      for (const [name, p] of model.params) {
        const g = grads.get(name)!;
        assert.ok(g, `gradient for ${name}`);
        for (let i = 0; i < p.length; i += Math.max(1, Math.floor(p.length / 6))) {
          const keep = p[i]!;
          p[i] = keep + eps;
          const up = (await lossAndGrads(model, x, texts)).loss;
          p[i] = keep - eps;
          const down = (await lossAndGrads(model, x, texts)).loss;
          p[i] = keep;
          const numeric = (up - down) / (2 * eps);
          const tol = 2e-3 + 3e-2 * Math.abs(numeric);
          assert.ok(Math.abs(numeric - g[i]!) < tol, `${name}[${i}]: analytic ${g[i]} vs numeric ${numeric}`);
          checked++;
        }
      }
      assert.ok(checked >= 20, `checked ${checked}`);
    });
  });
}

describe('GRU text encoder gradients (backpropagation through time)', () => {
  it('match finite differences over long, tied, one-word and empty captions', async () => {
    const D = 3;
    const H = 4;
    const rand = seeded(21);
    const params: Params = new Map();
    initGru(params, 'g', D, H, rand);
    // non-zero biases and larger weights than the start, so every gate is off its midpoint
    for (const p of params.values()) for (let i = 0; i < p.length; i++) p[i] = (rand() * 2 - 1) * 0.9;
    const embed = Float32Array.from({ length: 6 * D }, () => rand() * 2 - 1);
    const texts = [Int32Array.from([1, 2, 3, 4, 5, 1, 2]), Int32Array.from([3]), Int32Array.from([]), Int32Array.from([2, 2, 0, 4]), Int32Array.from([5, 4, 0, 1])];
    const probe = Float32Array.from({ length: texts.length * H }, () => rand() * 2 - 1);
    // a linear loss Σ probe ⊙ pooled in float64, so its differences carry only the forward pass's rounding
    const loss = async () => {
      const { pooled } = await gruForward(params, 'g', embed, D, H, texts);
      return pooled.data.reduce((s, v, i) => s + v * probe[i]!, 0);
    };
    const { pooled, cache } = await gruForward(params, 'g', embed, D, H, texts, true);
    assert.deepEqual([...pooled.data.subarray(2 * H, 3 * H)], [0, 0, 0, 0], 'an empty caption pools to zero');
    const grads: Params = new Map();
    const dEmbed = new Float32Array(embed.length);
    await gruBackward(params, grads, 'g', D, H, cache!, mat(texts.length, H, probe), dEmbed);
    const eps = 1e-2;
    let checked = 0;
    for (const [name, p, g] of [...[...params].map(([n, p]) => [n, p, grads.get(n)!] as const), ['embed', embed, dEmbed] as const]) {
      for (let i = 0; i < p.length; i++) {
        const keep = p[i]!;
        p[i] = keep + eps;
        const up = await loss();
        p[i] = keep - eps;
        const down = await loss();
        p[i] = keep;
        const numeric = (up - down) / (2 * eps);
        assert.ok(Math.abs(numeric - g[i]!) < 1e-3 + 1e-2 * Math.abs(numeric), `${name}[${i}]: analytic ${g[i]} vs numeric ${numeric}`);
        checked++;
      }
    }
    assert.equal(checked, 3 * H * D + 3 * H * H + 6 * H + embed.length);
  });
});

describe('matmul', () => {
  it('the onnxruntime Gemm path agrees with the JS loop for every transpose', async () => {
    const rand = seeded(5);
    const A = mat(70, 90, Float32Array.from({ length: 70 * 90 }, () => rand() - 0.5));
    const B = mat(90, 80, Float32Array.from({ length: 90 * 80 }, () => rand() - 0.5));
    const At = mat(90, 70, new Float32Array(90 * 70));
    for (let i = 0; i < 70; i++) for (let j = 0; j < 90; j++) At.data[j * 70 + i] = A.data[i * 90 + j]!;
    const Bt = mat(80, 90, new Float32Array(80 * 90));
    for (let i = 0; i < 90; i++) for (let j = 0; j < 80; j++) Bt.data[j * 90 + i] = B.data[i * 80 + j]!;
    const want = matmulJs(A, B);
    for (const [a, b, ta, tb] of [[A, B, false, false], [At, B, true, false], [A, Bt, false, true], [At, Bt, true, true]] as const) {
      const got = await matmul(a, b, ta, tb); // 504k multiply-adds: the ORT path
      assert.equal(got.rows, 70);
      assert.equal(got.cols, 80);
      for (let k = 0; k < want.data.length; k++) assert.ok(Math.abs(got.data[k]! - want.data[k]!) < 1e-4);
    }
    assert.throws(() => matmulJs(A, A), /inner sizes/);
  });
});

describe('cross-encoder training step gradients', () => {
  for (const global of ['pooled', 'pooled+mobilenet'] as const) it(`match finite differences for tokens, both projections and the temperature (global region from ${global})`, async () => {
    const config = { vocabSize: 6, dim: 4, lambda: 3, global };
    const params = initCross(config, 2);
    params.get('logScale')![0] = 1; // a soft softmax, so differences are informative
    const rand = seeded(8);
    const u = 3;
    const inputs = { cells: Float32Array.from({ length: u * 16 * 480 }, () => rand() * 2 - 1), pooled: Float32Array.from({ length: u * globalDim(config) }, () => rand() * 2 - 1) };
    const captions = [Int32Array.from([1, 2]), Int32Array.from([3]), Int32Array.from([4, 5, 4])];
    const { grads } = await batchStep(params, config, inputs, captions);
    const eps = 1e-3;
    let checked = 0;
    for (const [name, p] of params) {
      const g = grads.get(name)!;
      assert.ok(g, `gradient for ${name}`);
      for (let i = 0; i < p.length; i += Math.max(1, Math.floor(p.length / 5))) {
        const keep = p[i]!;
        p[i] = keep + eps;
        const up = (await batchStep(params, config, inputs, captions)).loss;
        p[i] = keep - eps;
        const down = (await batchStep(params, config, inputs, captions)).loss;
        p[i] = keep;
        const numeric = (up - down) / (2 * eps);
        assert.ok(Math.abs(numeric - g[i]!) < 2e-3 + 3e-2 * Math.abs(numeric), `${name}[${i}]: analytic ${g[i]} vs numeric ${numeric}`);
        checked++;
      }
    }
    assert.ok(checked >= 25, `checked ${checked}`);
  });
});
