import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mat } from '../../src/models/mat.js';
import { attentionScores, type TokenRows } from '../../src/models/starter/attention.js';
import { attentionBackward } from '../../src/train/batched-attention.js';
import { seeded } from '../../src/train/dual-encoder.js';
import { pairScore } from '../oracles/cross-attention.js';

describe('all-pairs attention scores', () => {
  const rand = seeded(11);
  const d = 5;
  const m = 3;
  const lambda = 4;
  // captions of 2, 1 and 3 tokens; 4 images
  const counts = Int32Array.from([2, 1, 3]);
  const owner = Int32Array.from([0, 0, 1, 2, 2, 2]);
  const T = mat(6, d, Float32Array.from({ length: 6 * d }, () => rand() * 2 - 1));
  const R = mat(4 * m, d, Float32Array.from({ length: 4 * m * d }, () => rand() * 2 - 1));
  const tok: TokenRows = { T, owner, counts };

  it('equals the pair score of every (caption, image) pair', async () => {
    const { S } = await attentionScores(tok, R, m, lambda);
    let row = 0;
    counts.forEach((n, c) => {
      const tokens = T.data.slice(row * d, (row + n) * d);
      row += n;
      for (let v = 0; v < 4; v++) {
        const want = pairScore({ tokens, n, regions: R.data.slice(v * m * d, (v + 1) * m * d), m }, d, lambda);
        assert.ok(Math.abs(S.data[c * 4 + v]! - want) < 1e-5, `caption ${c} image ${v}: ${S.data[c * 4 + v]} vs ${want}`);
      }
    });
  });

  it('gradients of tokens and regions match finite differences', async () => {
    const dS = mat(3, 4, Float32Array.from({ length: 12 }, () => rand() * 2 - 1));
    const loss = async () => {
      const { S } = await attentionScores(tok, R, m, lambda);
      return S.data.reduce((a, s, k) => a + s * dS.data[k]!, 0);
    };
    const { cache } = await attentionScores(tok, R, m, lambda);
    const { dT, dR } = await attentionBackward(dS, cache, tok, R, m, lambda);
    const eps = 1e-3;
    for (const [name, arr, analytic] of [['T', T.data, dT.data], ['R', R.data, dR.data]] as const) {
      for (let i = 0; i < arr.length; i++) {
        const keep = arr[i]!;
        arr[i] = keep + eps;
        const up = await loss();
        arr[i] = keep - eps;
        const down = await loss();
        arr[i] = keep;
        const numeric = (up - down) / (2 * eps);
        assert.ok(Math.abs(numeric - analytic[i]!) < 2e-3 + 1e-2 * Math.abs(numeric), `${name}[${i}]: ${analytic[i]} vs ${numeric}`);
      }
    }
  });
});
