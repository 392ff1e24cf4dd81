/**
 * Reads a TensorFlow.js graph model (model.json + weight shards) into plain typed arrays,
 * dequantising float16 weights. Only what the tfjs→ONNX converter needs.
 */
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createError } from '../../errors.js';
import { halfToFloat } from '../../util/float16.js';

export interface TfNode {
  name: string;
  op: string;
  input?: string[];
  attr?: Record<string, TfAttr>;
}
export interface TfAttr {
  s?: string;
  i?: string;
  f?: number;
  b?: boolean;
  list?: { i?: string[]; s?: string[] };
  type?: string;
  shape?: { dim?: { size: string }[] };
}
export interface TfWeight {
  dtype: 'float32' | 'int32';
  shape: number[];
  data: Float32Array | Int32Array;
}
export interface TfGraph {
  nodes: Map<string, TfNode>;
  weights: Map<string, TfWeight>;
}

interface ManifestEntry {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32';
  quantization?: { dtype: 'float16' | 'uint8' | 'uint16'; original_dtype?: string; min?: number; scale?: number };
}

export async function readTfjsGraph(modelJsonPath: string): Promise<TfGraph> {
  let json: { modelTopology?: { node?: TfNode[] }; weightsManifest?: { paths: string[]; weights: ManifestEntry[] }[] };
  try {
    json = JSON.parse(await readFile(modelJsonPath, 'utf8')) as typeof json;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw createError('FILE_NOT_FOUND', modelJsonPath);
    throw createError('MODEL_UNSUPPORTED', modelJsonPath, `not a tfjs model.json (${(error as Error).message})`);
  }
  const topology = json.modelTopology?.node;
  if (!topology || !json.weightsManifest) throw createError('MODEL_UNSUPPORTED', modelJsonPath, 'no modelTopology.node or weightsManifest');
  const nodes = new Map(topology.map((n) => [n.name, n]));
  const weights = new Map<string, TfWeight>();
  for (const group of json.weightsManifest) {
    const bytes = Buffer.concat(await Promise.all(group.paths.map((p) => readFile(join(dirname(modelJsonPath), p)))));
    let offset = 0;
    for (const w of group.weights) {
      const count = w.shape.reduce((a, b) => a * b, 1);
      const q = w.quantization;
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      let data: Float32Array | Int32Array;
      if (q?.dtype === 'float16') {
        data = new Float32Array(count);
        for (let i = 0; i < count; i++) data[i] = halfToFloat(view.getUint16(offset + 2 * i, true));
        offset += 2 * count;
      } else if (q?.dtype === 'uint8' || q?.dtype === 'uint16') {
        const size = q.dtype === 'uint8' ? 1 : 2;
        data = new Float32Array(count);
        for (let i = 0; i < count; i++) {
          const v = size === 1 ? view.getUint8(offset + i) : view.getUint16(offset + 2 * i, true);
          data[i] = (q.min ?? 0) + v * (q.scale ?? 1);
        }
        offset += size * count;
      } else if (w.dtype === 'int32') {
        data = new Int32Array(count);
        for (let i = 0; i < count; i++) data[i] = view.getInt32(offset + 4 * i, true);
        offset += 4 * count;
      } else {
        data = new Float32Array(count);
        for (let i = 0; i < count; i++) data[i] = view.getFloat32(offset + 4 * i, true);
        offset += 4 * count;
      }
      weights.set(w.name, { dtype: q ? 'float32' : w.dtype, shape: w.shape, data });
    }
  }
  return { nodes, weights };
}

export const attrString = (a: TfAttr | undefined): string => (a?.s ? Buffer.from(a.s, 'base64').toString('utf8') : '');
export const attrInts = (a: TfAttr | undefined): number[] => (a?.list?.i ?? []).map(Number);
export const attrStrings = (a: TfAttr | undefined): string[] => (a?.list?.s ?? []).map((s) => Buffer.from(s, 'base64').toString('utf8'));
