import type * as ort from 'onnxruntime-node';

/**
 * Session options every onnxruntime model here shares. A query runs several sessions one after
 * another on few cores (backbone, heads, the index scan, stage-2 products); by default a
 * session's threads spin for a while after each run and take the cores from the next session,
 * which cost 25–35 ms per hybrid image query on this 2-core machine. So no spinning.
 */
export function sessionOptions(options: ort.InferenceSession.SessionOptions = {}): ort.InferenceSession.SessionOptions {
  return { graphOptimizationLevel: 'all', ...options, extra: { session: { intra_op: { allow_spinning: '0' } } } };
}
