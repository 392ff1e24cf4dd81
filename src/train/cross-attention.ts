/**
 * The starter cross-encoder's scoring function and its gradients: caption tokens attend over
 * an image's regions (a 4×4 grid of backbone features plus the pooled vector), in the manner
 * of SCAN's text-to-image attention (Lee et al. 2018):
 *   e_ij = λ · t_i·r_j     a_i = softmax_j(e_ij)     c_i = Σ_j a_ij r_j
 *   S    = (1/n) Σ_i t_i·c_i + b
 * where t_i are learned word vectors and r_j = W_r·x_j + b_r are projected regions. Written by
 * hand (no autodiff in Node); checked against finite differences in test/train/cross-attention.test.ts.
 */

export interface PairInput {
  /** token vectors, n × d */
  tokens: Float32Array;
  n: number;
  /** projected regions, m × d */
  regions: Float32Array;
  m: number;
}

export interface PairGrad {
  dTokens: Float32Array;
  dRegions: Float32Array;
}

/** Score of one (caption, image) pair; with `g` (dL/dS) also the gradients of tokens and regions. */
export function pairScore(p: PairInput, d: number, lambda: number, g?: number): { score: number; grad?: PairGrad } {
  const { tokens: t, regions: r, n, m } = p;
  const attn = new Float64Array(n * m);
  const ctx = new Float64Array(n * d);
  let score = 0;
  for (let i = 0; i < n; i++) {
    let max = -Infinity;
    for (let j = 0; j < m; j++) {
      let e = 0;
      for (let k = 0; k < d; k++) e += t[i * d + k]! * r[j * d + k]!;
      attn[i * m + j] = lambda * e;
      max = Math.max(max, lambda * e);
    }
    let z = 0;
    for (let j = 0; j < m; j++) {
      const a = Math.exp(attn[i * m + j]! - max);
      attn[i * m + j] = a;
      z += a;
    }
    for (let j = 0; j < m; j++) {
      const a = (attn[i * m + j]! /= z);
      for (let k = 0; k < d; k++) ctx[i * d + k]! += a * r[j * d + k]!;
    }
    for (let k = 0; k < d; k++) score += (t[i * d + k]! * ctx[i * d + k]!) / n;
  }
  if (g === undefined) return { score };

  const dT = new Float32Array(n * d);
  const dR = new Float32Array(m * d);
  const gm = g / n;
  const ga = new Float64Array(m);
  for (let i = 0; i < n; i++) {
    // m_i = t_i·c_i: direct path to t_i, and to c_i
    for (let k = 0; k < d; k++) dT[i * d + k]! += gm * ctx[i * d + k]!;
    // c_i = Σ a_ij r_j: to r_j through the weights, and to a_ij
    let weighted = 0;
    for (let j = 0; j < m; j++) {
      const a = attn[i * m + j]!;
      let tr = 0;
      for (let k = 0; k < d; k++) {
        tr += t[i * d + k]! * r[j * d + k]!;
        dR[j * d + k]! += gm * a * t[i * d + k]!;
      }
      ga[j] = gm * tr;
      weighted += a * ga[j]!;
    }
    // softmax, then e_ij = λ t_i·r_j
    for (let j = 0; j < m; j++) {
      const ge = attn[i * m + j]! * (ga[j]! - weighted) * lambda;
      for (let k = 0; k < d; k++) {
        dT[i * d + k]! += ge * r[j * d + k]!;
        dR[j * d + k]! += ge * t[i * d + k]!;
      }
    }
  }
  return { score, grad: { dTokens: dT, dRegions: dR } };
}

/** Listwise loss for one query over [positive, negatives…]: −log softmax(scores)[0], and dL/dscores. */
export function listwiseLoss(scores: number[]): { loss: number; dScores: number[] } {
  const max = Math.max(...scores);
  const exps = scores.map((s) => Math.exp(s - max));
  const z = exps.reduce((a, b) => a + b, 0);
  return { loss: -(scores[0]! - max - Math.log(z)), dScores: exps.map((e, i) => e / z - (i === 0 ? 1 : 0)) };
}
