/**
 * The cross-encoder's score (src/train/cross-attention.ts) for every (caption, image) pair of a
 * batch at once, so training can use in-batch negatives like the bi-encoder does. With unit
 * token and region vectors the score of caption c and image v is
 *   e_ij = t_i·r_j     a_ij = softmax_j(λ e_ij)     s_iv = Σ_j a_ij e_ij     S_cv = mean_{i∈c} s_iv
 * (t_i·c_i in pairScore equals Σ_j a_ij e_ij), so all pairs need one Gemm of tokens × regions
 * forward and two backward; what is left is a softmax over each image's m regions per token.
 */
import { mat, matmul, type Mat } from './matmul.js';

export interface TokenRows {
  /** every caption's token vectors, stacked: tokens × d */
  T: Mat;
  /** which caption each token row belongs to */
  owner: Int32Array;
  /** tokens per caption; a caption with none scores 0 against every image */
  counts: Int32Array;
}

export interface AttentionCache {
  E: Float32Array;
  A: Float32Array;
  s: Float32Array;
}

/** S (captions × images) for regions R stacked m rows per image. */
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

/** Gradients of T and R from dL/dS. */
export async function attentionBackward(dS: Mat, cache: AttentionCache, tok: TokenRows, R: Mat, m: number, lambda: number): Promise<{ dT: Mat; dR: Mat }> {
  const nImg = R.rows / m;
  const nTok = tok.T.rows;
  const cols = nImg * m;
  const { E, A, s } = cache;
  const dE = mat(nTok, cols);
  for (let i = 0; i < nTok; i++) {
    const c = tok.owner[i]!;
    const w = 1 / tok.counts[c]!;
    for (let v = 0; v < nImg; v++) {
      const g = w * dS.data[c * nImg + v]!;
      if (g === 0) continue;
      const o = i * cols + v * m;
      const sv = s[i * nImg + v]!;
      // ∂s/∂e_j = a_j (1 + λ (e_j − s))
      for (let j = 0; j < m; j++) dE.data[o + j] = g * A[o + j]! * (1 + lambda * (E[o + j]! - sv));
    }
  }
  return { dT: await matmul(dE, R), dR: await matmul(dE, tok.T, true) };
}
