/**
 * Exact top-k as one ONNX graph on onnxruntime-node: Gemm(Q, Cᵀ) → TopK. ORT's MLAS kernels
 * are multithreaded and vectorised, which plain JavaScript loops are not; the benchmark
 * (bench/search.bench.ts) measures both so the index can use whichever is faster.
 */
import * as ort from 'onnxruntime-node';
import { encodeModel } from '../onnx/writer.js';
import { sessionOptions } from '../util/ort-session.js';

export function topKGraph(): Uint8Array {
  return encodeModel({
    name: 'exact-top-k',
    nodes: [
      { op: 'Gemm', inputs: ['queries', 'corpus'], outputs: ['scores'], attrs: { transB: { i: 1 } } },
      { op: 'TopK', inputs: ['scores', 'k'], outputs: ['values', 'indices'], attrs: { axis: { i: -1 }, largest: { i: 1 }, sorted: { i: 1 } } },
    ],
    initializers: [],
    inputs: [
      { name: 'queries', type: 'float', shape: ['q', 'dim'] },
      { name: 'corpus', type: 'float', shape: ['n', 'dim'] },
      { name: 'k', type: 'int64', shape: [1] },
    ],
    outputs: [
      { name: 'values', type: 'float', shape: ['q', 'k'] },
      { name: 'indices', type: 'int64', shape: ['q', 'k'] },
    ],
  });
}

export class OrtTopK {
  private constructor(private readonly session: ort.InferenceSession) {}

  static async create(options: { threads?: number } = {}): Promise<OrtTopK> {
    const session = await ort.InferenceSession.create(topKGraph(), sessionOptions({ intraOpNumThreads: options.threads ?? 0 }));
    return new OrtTopK(session);
  }

  /** `queries` is q×dim and `corpus` n×dim, both row-major; returns per query the rows and scores, best first. */
  async search(queries: Float32Array, q: number, corpus: Float32Array, n: number, dim: number, k: number): Promise<{ rows: number[]; scores: number[] }[]> {
    const kk = Math.min(k, n);
    const out = await this.session.run({
      queries: new ort.Tensor('float32', queries, [q, dim]),
      corpus: new ort.Tensor('float32', corpus, [n, dim]),
      k: new ort.Tensor('int64', BigInt64Array.from([BigInt(kk)]), [1]),
    });
    const values = out.values!.data as Float32Array;
    const indices = out.indices!.data as BigInt64Array;
    return Array.from({ length: q }, (_, i) => ({
      rows: Array.from(indices.subarray(i * kk, (i + 1) * kk), Number),
      scores: Array.from(values.subarray(i * kk, (i + 1) * kk)),
    }));
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}
