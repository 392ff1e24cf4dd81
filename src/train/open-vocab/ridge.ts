/**
 * Ridge regression in closed form, for the open vocabulary's map from GloVe vectors to the
 * starter's trained word vectors: Y ≈ X·W + b, minimising |XW + b − Y|² + λ|W|² (the bias is
 * not penalised). Solved through the normal equations, (XᵀX + λI)W = XᵀY on centred X and Y,
 * with a Cholesky factorisation: the system is (input dim)², 100×100 here, so plain loops do.
 */
export interface RidgeMap {
  inDim: number;
  outDim: number;
  /** inDim × outDim, row-major */
  W: Float32Array;
  b: Float32Array;
}

/** x: n × inDim, y: n × outDim, both row-major. */
export function fitRidge(x: Float32Array, y: Float32Array, n: number, inDim: number, outDim: number, lambda: number): RidgeMap {
  if (n === 0) throw new Error('ridge: no examples');
  const mx = new Float64Array(inDim);
  const my = new Float64Array(outDim);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < inDim; j++) mx[j]! += x[i * inDim + j]! / n;
    for (let k = 0; k < outDim; k++) my[k]! += y[i * outDim + k]! / n;
  }
  const A = new Float64Array(inDim * inDim);
  const B = new Float64Array(inDim * outDim);
  const xc = new Float64Array(inDim);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < inDim; j++) xc[j] = x[i * inDim + j]! - mx[j]!;
    for (let j = 0; j < inDim; j++) {
      const a = xc[j]!;
      if (a === 0) continue;
      for (let l = j; l < inDim; l++) A[j * inDim + l]! += a * xc[l]!;
      for (let k = 0; k < outDim; k++) B[j * outDim + k]! += a * (y[i * outDim + k]! - my[k]!);
    }
  }
  for (let j = 0; j < inDim; j++) {
    for (let l = 0; l < j; l++) A[j * inDim + l] = A[l * inDim + j]!;
    A[j * inDim + j]! += lambda;
  }
  const W = choleskySolve(A, B, inDim, outDim);
  const b = new Float32Array(outDim);
  for (let k = 0; k < outDim; k++) {
    let s = my[k]!;
    for (let j = 0; j < inDim; j++) s -= mx[j]! * W[j * outDim + k]!;
    b[k] = s;
  }
  return { inDim, outDim, W: Float32Array.from(W), b };
}

/** Solves A·X = B for symmetric positive definite A (d × d) and B (d × m). */
function choleskySolve(A: Float64Array, B: Float64Array, d: number, m: number): Float64Array {
  const L = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j <= i; j++) {
      let s = A[i * d + j]!;
      for (let k = 0; k < j; k++) s -= L[i * d + k]! * L[j * d + k]!;
      if (i === j) {
        if (s <= 0) throw new Error('ridge: matrix not positive definite (raise lambda)');
        L[i * d + i] = Math.sqrt(s);
      } else L[i * d + j] = s / L[j * d + j]!;
    }
  }
  const X = Float64Array.from(B);
  for (let c = 0; c < m; c++) {
    for (let i = 0; i < d; i++) {
      let s = X[i * m + c]!;
      for (let k = 0; k < i; k++) s -= L[i * d + k]! * X[k * m + c]!;
      X[i * m + c] = s / L[i * d + i]!;
    }
    for (let i = d - 1; i >= 0; i--) {
      let s = X[i * m + c]!;
      for (let k = i + 1; k < d; k++) s -= L[k * d + i]! * X[k * m + c]!;
      X[i * m + c] = s / L[i * d + i]!;
    }
  }
  return X;
}

/** Row i of x mapped: x_i·W + b. */
export function applyRidge(map: RidgeMap, x: Float32Array, rows: number): Float32Array {
  const { inDim, outDim, W, b } = map;
  const out = new Float32Array(rows * outDim);
  for (let i = 0; i < rows; i++) {
    const o = i * outDim;
    out.set(b, o);
    for (let j = 0; j < inDim; j++) {
      const a = x[i * inDim + j]!;
      if (a === 0) continue;
      for (let k = 0; k < outDim; k++) out[o + k]! += a * W[j * outDim + k]!;
    }
  }
  return out;
}

/** Mean cosine between matching rows of a and b (rows of d). */
export function meanRowCosine(a: Float32Array, b: Float32Array, d: number): number {
  const rows = a.length / d;
  let sum = 0;
  for (let i = 0; i < rows; i++) {
    let ab = 0;
    let aa = 0;
    let bb = 0;
    for (let k = 0; k < d; k++) {
      const u = a[i * d + k]!;
      const v = b[i * d + k]!;
      ab += u * v;
      aa += u * u;
      bb += v * v;
    }
    sum += ab / (Math.sqrt(aa * bb) || 1);
  }
  return sum / rows;
}
