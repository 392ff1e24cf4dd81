/**
 * The few layers the starter dual encoder needs, each with a hand-written backward pass
 * (checked against finite differences in test/train/gradients.test.ts). Node has no
 * training runtime; these are small enough to write and test by hand. Forward passes that
 * inference needs too (row normalisation, the cross-encoder's attention) live in src/models/.
 */
import { mat, matmul, type Mat } from '../models/mat.js';
import type { HeadSpec } from '../models/starter/head-spec.js';
import type { Params } from '../models/tensor-file.js';

/** Xavier/Glorot-uniform weights from a seeded generator; biases zero. */
export function initHead(params: Params, prefix: string, spec: HeadSpec, rand: () => number): void {
  const layer = (name: string, fanIn: number, fanOut: number) => {
    const limit = Math.sqrt(6 / (fanIn + fanOut));
    params.set(`${prefix}.${name}.W`, Float32Array.from({ length: fanIn * fanOut }, () => (rand() * 2 - 1) * limit));
    params.set(`${prefix}.${name}.b`, new Float32Array(fanOut));
  };
  if (spec.residual && spec.inDim !== spec.outDim) throw new Error(`a residual head needs inDim = outDim (${spec.inDim} ≠ ${spec.outDim})`);
  if (spec.kind === 'linear') layer('l1', spec.inDim, spec.outDim);
  else {
    layer('l1', spec.inDim, spec.hidden);
    layer('l2', spec.hidden, spec.outDim);
  }
  if (spec.residual) params.get(`${prefix}.${spec.kind === 'linear' ? 'l1' : 'l2'}.W`)!.fill(0);
}

function addResidual(out: Mat, x: Mat): Mat {
  for (let i = 0; i < out.data.length; i++) out.data[i]! += x.data[i]!;
  return out;
}

function addBias(x: Mat, b: Float32Array): void {
  for (let i = 0; i < x.rows; i++) for (let j = 0; j < x.cols; j++) x.data[i * x.cols + j]! += b[j]!;
}

function colSums(x: Mat): Float32Array {
  const s = new Float32Array(x.cols);
  for (let i = 0; i < x.rows; i++) for (let j = 0; j < x.cols; j++) s[j]! += x.data[i * x.cols + j]!;
  return s;
}

export interface HeadCache {
  x: Mat;
  h?: Mat;
}

export async function headForward(params: Params, prefix: string, spec: HeadSpec, x: Mat): Promise<{ out: Mat; cache: HeadCache }> {
  const W1 = mat(spec.inDim, spec.kind === 'linear' ? spec.outDim : spec.hidden, params.get(`${prefix}.l1.W`)!);
  const z1 = await matmul(x, W1);
  addBias(z1, params.get(`${prefix}.l1.b`)!);
  if (spec.kind === 'linear') return { out: spec.residual ? addResidual(z1, x) : z1, cache: { x } };
  const h = mat(z1.rows, z1.cols, z1.data.map((v) => (v > 0 ? v : 0)));
  const out = await matmul(h, mat(spec.hidden, spec.outDim, params.get(`${prefix}.l2.W`)!));
  addBias(out, params.get(`${prefix}.l2.b`)!);
  return { out: spec.residual ? addResidual(out, x) : out, cache: { x, h } };
}

/** Adds `g` to the gradient `name` in `grads` (a parameter used twice sums both), or puts it there. */
export function addGrad(grads: Params, name: string, g: Float32Array): void {
  const t = grads.get(name);
  if (t) for (let i = 0; i < g.length; i++) t[i]! += g[i]!;
  else grads.set(name, g);
}

/** Accumulates parameter gradients into `grads`; returns dL/dx. */
export async function headBackward(params: Params, grads: Params, prefix: string, spec: HeadSpec, dOut: Mat, cache: HeadCache): Promise<Mat> {
  const acc = (name: string, g: Float32Array) => addGrad(grads, name, g);
  if (spec.kind === 'linear') {
    acc(`${prefix}.l1.W`, (await matmul(cache.x, dOut, true)).data);
    acc(`${prefix}.l1.b`, colSums(dOut));
    const dx = await matmul(dOut, mat(spec.inDim, spec.outDim, params.get(`${prefix}.l1.W`)!), false, true);
    return spec.residual ? addResidual(dx, dOut) : dx;
  }
  const h = cache.h!;
  acc(`${prefix}.l2.W`, (await matmul(h, dOut, true)).data);
  acc(`${prefix}.l2.b`, colSums(dOut));
  const dh = await matmul(dOut, mat(spec.hidden, spec.outDim, params.get(`${prefix}.l2.W`)!), false, true);
  for (let i = 0; i < dh.data.length; i++) if (h.data[i]! <= 0) dh.data[i] = 0;
  acc(`${prefix}.l1.W`, (await matmul(cache.x, dh, true)).data);
  acc(`${prefix}.l1.b`, colSums(dh));
  const dx = await matmul(dh, mat(spec.inDim, spec.hidden, params.get(`${prefix}.l1.W`)!), false, true);
  return spec.residual ? addResidual(dx, dOut) : dx;
}

/** d/dx of x/|x|: (dy − y·(y·dy)) / |x|. */
export function normalizeRowsBackward(dy: Mat, y: Mat, norms: Float32Array): Mat {
  const dx = mat(dy.rows, dy.cols);
  for (let i = 0; i < dy.rows; i++) {
    let d = 0;
    for (let j = 0; j < dy.cols; j++) d += y.data[i * dy.cols + j]! * dy.data[i * dy.cols + j]!;
    for (let j = 0; j < dy.cols; j++) dx.data[i * dy.cols + j] = (dy.data[i * dy.cols + j]! - y.data[i * dy.cols + j]! * d) / norms[i]!;
  }
  return dx;
}

/** Mean of word vectors per text (an embedding bag); texts with no known word pool to zero. */
export function embeddingBag(table: Float32Array, dim: number, texts: Int32Array[]): Mat {
  const out = mat(texts.length, dim);
  texts.forEach((ids, i) => {
    if (ids.length === 0) return;
    const o = i * dim;
    for (const id of ids) for (let j = 0; j < dim; j++) out.data[o + j]! += table[id * dim + j]!;
    for (let j = 0; j < dim; j++) out.data[o + j]! /= ids.length;
  });
  return out;
}

export function embeddingBagBackward(grad: Float32Array, dim: number, texts: Int32Array[], dOut: Mat): void {
  texts.forEach((ids, i) => {
    for (const id of ids) for (let j = 0; j < dim; j++) grad[id * dim + j]! += dOut.data[i * dim + j]! / ids.length;
  });
}

/**
 * Symmetric InfoNCE (CLIP's loss) over a square score matrix whose diagonal holds the matched
 * pairs, logits = exp(logScale) · sim. Returns the loss, dL/dsim and dL/dlogScale.
 */
export function contrastive(sim: Mat, logScale: number): { loss: number; dSim: Mat; dLogScale: number; accuracy: number } {
  const B = sim.rows;
  const scale = Math.exp(logScale);
  const G = mat(B, B);
  let loss = 0;
  let correct = 0;
  // rows: text → image
  for (let i = 0; i < B; i++) {
    let max = -Infinity;
    for (let j = 0; j < B; j++) max = Math.max(max, scale * sim.data[i * B + j]!);
    let z = 0;
    for (let j = 0; j < B; j++) z += Math.exp(scale * sim.data[i * B + j]! - max);
    loss += -(scale * sim.data[i * B + i]! - max - Math.log(z)) / (2 * B);
    let best = 0;
    for (let j = 0; j < B; j++) {
      G.data[i * B + j]! += (Math.exp(scale * sim.data[i * B + j]! - max) / z - (i === j ? 1 : 0)) / (2 * B);
      if (sim.data[i * B + j]! > sim.data[i * B + best]!) best = j;
    }
    if (best === i) correct++;
  }
  // columns: image → text
  for (let j = 0; j < B; j++) {
    let max = -Infinity;
    for (let i = 0; i < B; i++) max = Math.max(max, scale * sim.data[i * B + j]!);
    let z = 0;
    for (let i = 0; i < B; i++) z += Math.exp(scale * sim.data[i * B + j]! - max);
    loss += -(scale * sim.data[j * B + j]! - max - Math.log(z)) / (2 * B);
    for (let i = 0; i < B; i++) G.data[i * B + j]! += (Math.exp(scale * sim.data[i * B + j]! - max) / z - (i === j ? 1 : 0)) / (2 * B);
  }
  let dLogScale = 0;
  for (let k = 0; k < B * B; k++) dLogScale += G.data[k]! * sim.data[k]! * scale;
  return { loss, dSim: mat(B, B, G.data.map((g) => g * scale)), dLogScale, accuracy: correct / B };
}

/** InfoNCE over embeddings: row i of T matches row i of I, sim = T·Iᵀ (cosines for unit rows). */
export async function infoNce(T: Mat, I: Mat, logScale: number): Promise<{ loss: number; dT: Mat; dI: Mat; dLogScale: number; accuracy: number }> {
  const { loss, dSim, dLogScale, accuracy } = contrastive(await matmul(T, I, false, true), logScale);
  return { loss, dT: await matmul(dSim, I), dI: await matmul(dSim, T, true), dLogScale, accuracy };
}
