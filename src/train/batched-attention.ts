/**
 * The backward pass of the batched attention score (src/models/starter/attention.ts): with
 * every caption of a batch scored against every image, the gradients of tokens and regions are
 * two Gemms, after the softmax's own derivative per token and image.
 */
import type { AttentionCache, TokenRows } from '../models/starter/attention.js';
import { mat, matmul, type Mat } from '../models/mat.js';

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
