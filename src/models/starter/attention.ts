/**
 * The starter cross-encoder's score for every (caption, image) pair of a batch at once. With
 * unit token vectors t_i and unit regions r_j (SCAN's text-to-image attention, Lee et al. 2018)
 * the score of caption c and image v is
 *   e_ij = t_i·r_j     a_ij = softmax_j(λ e_ij)     s_iv = Σ_j a_ij e_ij     S_cv = mean_{i∈c} s_iv
 * so all pairs need one Gemm of tokens × regions; what is left is a softmax over each image's m
 * regions per token. Reranking scores one query against a batch of candidates this way, and
 * training scores a batch against itself (in-batch negatives; the backward pass is in
 * src/train/batched-attention.ts). test/oracles/cross-attention.ts holds the readable
 * one-pair definition the tests check this against.
 */
import { mat, matmul, type Mat } from '../mat.js';

export interface TokenRows {
  /** every caption's token vectors, stacked: tokens × d */
  T: Mat;
  /** which caption each token row belongs to */
  owner: Int32Array;
  /** tokens per caption; a caption with none scores 0 against every image */
  counts: Int32Array;
}

/** What the backward pass reuses: logits, attention weights and per-token scores. */
export interface AttentionCache {
  E: Float32Array;
  A: Float32Array;
  s: Float32Array;
}

/** S (captions × images) for regions R stacked m rows per image, with what training's backward pass needs. */
export async function attentionScores(tok: TokenRows, R: Mat, m: number, lambda: number): Promise<{ S: Mat; cache: AttentionCache }> {
  const nImg = R.rows / m;
  const nTok = tok.T.rows;
  const E = (await matmul(tok.T, R, false, true)).data;
  const A = new Float32Array(E.length);
  const s = new Float32Array(nTok * nImg);
  const S = mat(tok.counts.length, nImg);
  const cols = nImg * m;
  for (let i = 0; i < nTok; i++) {
    const c = tok.owner[i]!;
    const w = 1 / tok.counts[c]!;
    for (let v = 0; v < nImg; v++) {
      const o = i * cols + v * m;
      let max = -Infinity;
      for (let j = 0; j < m; j++) max = Math.max(max, E[o + j]!);
      let z = 0;
      for (let j = 0; j < m; j++) z += A[o + j] = Math.exp(lambda * (E[o + j]! - max));
      let sv = 0;
      for (let j = 0; j < m; j++) sv += (A[o + j]! /= z) * E[o + j]!;
      s[i * nImg + v] = sv;
      S.data[c * nImg + v]! += w * sv;
    }
  }
  return { S, cache: { E, A, s } };
}

/**
 * The same S for scoring alone (search time, no gradient): no logits, weights or per-token
 * scores kept, only one image's m weights at a time. The arithmetic is attentionScores' own,
 * step for step (weights rounded to float32 where that one stores them), so the scores are
 * the same to the bit (test/models/attention-inference.test.ts).
 */
export async function attentionScoresOnly(tok: TokenRows, R: Mat, m: number, lambda: number): Promise<Mat> {
  const nImg = R.rows / m;
  const nTok = tok.T.rows;
  const E = (await matmul(tok.T, R, false, true)).data;
  const a = new Float32Array(m);
  const S = mat(tok.counts.length, nImg);
  const out = S.data;
  const cols = nImg * m;
  for (let i = 0; i < nTok; i++) {
    const c = tok.owner[i]!;
    const w = 1 / tok.counts[c]!;
    const row = c * nImg;
    for (let v = 0; v < nImg; v++) {
      const o = i * cols + v * m;
      let max = E[o]!;
      for (let j = 1; j < m; j++) if (E[o + j]! > max) max = E[o + j]!;
      let z = 0;
      for (let j = 0; j < m; j++) z += a[j] = Math.exp(lambda * (E[o + j]! - max));
      let sv = 0;
      for (let j = 0; j < m; j++) sv += (a[j]! /= z) * E[o + j]!;
      out[row + v]! += w * sv;
    }
  }
  return S;
}
