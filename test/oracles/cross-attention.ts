/**
 * A test oracle: the starter cross-encoder's scoring function for one (caption, image) pair, caption tokens
 * attend over an image's regions (a 4×4 grid of backbone features plus the pooled vector), in
 * the manner of SCAN's text-to-image attention (Lee et al. 2018):
 *   e_ij = t_i·r_j     a_ij = softmax_j(λ e_ij)     c_i = Σ_j a_ij r_j     S = (1/n) Σ_i t_i·c_i
 * with unit token vectors t_i and unit projected regions r_j, so e_ij are cosines. This is the
 * readable definition; training and reranking compute it for many pairs at once
 * (src/models/starter/attention.ts), which test/train/batched-attention.test.ts checks against it.
 */

export interface PairInput {
  /** token vectors, n × d */
  tokens: Float32Array;
  n: number;
  /** projected regions, m × d */
  regions: Float32Array;
  m: number;
}

export function pairScore(p: PairInput, d: number, lambda: number): number {
  const { tokens: t, regions: r, n, m } = p;
  let score = 0;
  for (let i = 0; i < n; i++) {
    const e = Array.from({ length: m }, (_, j) => {
      let dot = 0;
      for (let k = 0; k < d; k++) dot += t[i * d + k]! * r[j * d + k]!;
      return dot;
    });
    const max = Math.max(...e);
    const w = e.map((x) => Math.exp(lambda * (x - max)));
    const z = w.reduce((a, b) => a + b, 0);
    for (let k = 0; k < d; k++) {
      let c = 0;
      for (let j = 0; j < m; j++) c += (w[j]! / z) * r[j * d + k]!;
      score += (t[i * d + k]! * c) / n;
    }
  }
  return score;
}
