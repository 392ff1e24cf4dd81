/**
 * Symmetric int8 quantisation of a rows × cols matrix with one float32 scale per row (axis 0)
 * or per column (axis 1): scale = max |x| / 127 (1 for all zeros), code = round(x / scale). One
 * definition for the tensor files (q8 rows) and the compact ONNX graphs (DequantizeLinear reads
 * the same codes and scales back).
 */
export function quantizeInt8(data: Float32Array, cols: number, axis: 0 | 1 = 0): { codes: Int8Array; scales: Float32Array } {
  if (data.length % cols !== 0) throw new Error(`int8: ${data.length} values are not rows of ${cols}`);
  const at = axis === 0 ? (i: number) => Math.floor(i / cols) : (i: number) => i % cols;
  const scales = new Float32Array(axis === 0 ? data.length / cols : cols);
  data.forEach((x, i) => {
    scales[at(i)] = Math.max(scales[at(i)]!, Math.abs(x));
  });
  scales.forEach((max, j) => (scales[j] = max / 127 || 1));
  return { codes: Int8Array.from(data, (x, i) => Math.round(x / scales[at(i)]!)), scales };
}

/** The float32 values of int8 codes (as numbers or Int8Array) and their scales: code × scale, as DequantizeLinear computes it. */
export function dequantizeInt8(codes: ArrayLike<number>, scales: Float32Array, cols: number, axis: 0 | 1 = 0): Float32Array {
  const out = new Float32Array(codes.length);
  for (let i = 0; i < codes.length; i++) out[i] = codes[i]! * scales[axis === 0 ? Math.floor(i / cols) : i % cols]!;
  return out;
}
