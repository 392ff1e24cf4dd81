/**
 * Dense row-major matrices for the models computed in TypeScript (the starter cross-encoder)
 * and for training: C = op(A)·op(B) and row normalisation. Large products run as an ONNX Gemm
 * on onnxruntime-node (MLAS: vectorised and multithreaded, ~30x a JS loop here); small ones,
 * and every product in the gradient tests, run in plain JavaScript. Both paths are tested to agree.
 */
import * as ort from 'onnxruntime-node';
import { encodeModel } from '../onnx/writer.js';
import { sessionOptions } from '../util/ort-session.js';

export interface Mat {
  data: Float32Array;
  rows: number;
  cols: number;
}

export const mat = (rows: number, cols: number, data: Float32Array = new Float32Array(rows * cols)): Mat => ({ data, rows, cols });

/** Vectors of `dim` as one row-major block (what Gemm, tensor files and banks take). */
export function stackRows(rows: Float32Array[], dim: number): Float32Array {
  const out = new Float32Array(rows.length * dim);
  rows.forEach((r, i) => out.set(r, i * dim));
  return out;
}

/** JS reference: op(A) is m×k, op(B) is k×n. */
export function matmulJs(a: Mat, b: Mat, transA = false, transB = false): Mat {
  const m = transA ? a.cols : a.rows;
  const k = transA ? a.rows : a.cols;
  const n = transB ? b.rows : b.cols;
  if ((transB ? b.cols : b.rows) !== k) throw new Error(`matmul: inner sizes ${k} and ${transB ? b.cols : b.rows}`);
  const out = new Float32Array(m * n);
  const A = a.data;
  const B = b.data;
  for (let i = 0; i < m; i++) {
    for (let p = 0; p < k; p++) {
      const av = transA ? A[p * a.cols + i]! : A[i * a.cols + p]!;
      if (av === 0) continue;
      const o = i * n;
      if (transB) for (let j = 0; j < n; j++) out[o + j]! += av * B[j * b.cols + p]!;
      else {
        const r = p * b.cols;
        for (let j = 0; j < n; j++) out[o + j]! += av * B[r + j]!;
      }
    }
  }
  return mat(m, n, out);
}

/**
 * One Gemm session per transposition, created on first use and shared by everything in the
 * process: a graph without weights, whose runs share no state, so it is a constant, never
 * released, that no caller can disturb for another.
 */
const sessions = new Map<string, Promise<ort.InferenceSession>>();

function gemmSession(transA: boolean, transB: boolean): Promise<ort.InferenceSession> {
  const key = `${+transA}${+transB}`;
  let s = sessions.get(key);
  if (!s) {
    const bytes = encodeModel({
      name: `gemm${key}`,
      nodes: [{ op: 'Gemm', inputs: ['A', 'B'], outputs: ['C'], attrs: { transA: { i: +transA }, transB: { i: +transB } } }],
      initializers: [],
      inputs: [
        { name: 'A', type: 'float', shape: ['a0', 'a1'] },
        { name: 'B', type: 'float', shape: ['b0', 'b1'] },
      ],
      outputs: [{ name: 'C', type: 'float', shape: ['m', 'n'] }],
    });
    s = ort.InferenceSession.create(bytes, sessionOptions());
    sessions.set(key, s);
  }
  return s;
}

/** Below this many multiply-adds the JS loop is cheaper than a session call. */
const ORT_MIN_MACS = 1 << 16;

export async function matmul(a: Mat, b: Mat, transA = false, transB = false): Promise<Mat> {
  const m = transA ? a.cols : a.rows;
  const k = transA ? a.rows : a.cols;
  const n = transB ? b.rows : b.cols;
  if (m * k * n < ORT_MIN_MACS) return matmulJs(a, b, transA, transB);
  const session = await gemmSession(transA, transB);
  const out = await session.run({
    A: new ort.Tensor('float32', a.data, [a.rows, a.cols]),
    B: new ort.Tensor('float32', b.data, [b.rows, b.cols]),
  });
  return mat(m, n, out.C!.data as Float32Array);
}

/** Row-wise L2 normalisation; returns the normalised rows and the norms (for the backward pass in training). */
export function normalizeRows(x: Mat): { y: Mat; norms: Float32Array } {
  const y = mat(x.rows, x.cols);
  const norms = new Float32Array(x.rows);
  for (let i = 0; i < x.rows; i++) {
    let s = 0;
    for (let j = 0; j < x.cols; j++) s += x.data[i * x.cols + j]! ** 2;
    const n = Math.max(Math.sqrt(s), 1e-12);
    norms[i] = n;
    for (let j = 0; j < x.cols; j++) y.data[i * x.cols + j] = x.data[i * x.cols + j]! / n;
  }
  return { y, norms };
}
