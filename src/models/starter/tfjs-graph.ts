/**
 * Reads a TensorFlow.js graph model (model.json + weight shards) into plain typed arrays,
 * dequantising float16 weights. Only what the tfjs→ONNX converter needs.
 */
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { runInNewContext } from 'node:vm';
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
  /**
   * How the model stores the weight when it is not float32, kept so a converter can store it
   * as compactly: uint8 codes (data = min + code · scale) or float16 bits.
   */
  stored?: { kind: 'uint8'; codes: Uint8Array; min: number; scale: number } | { kind: 'float16'; bits: Uint16Array };
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

interface TfjsModelJson {
  modelTopology?: { node?: TfNode[] };
  weightsManifest?: { paths: string[]; weights: ManifestEntry[] }[];
}

export async function readTfjsGraph(modelJsonPath: string): Promise<TfGraph> {
  let json: TfjsModelJson;
  try {
    json = JSON.parse(await readFile(modelJsonPath, 'utf8')) as TfjsModelJson;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw createError('FILE_NOT_FOUND', modelJsonPath);
    throw createError('MODEL_UNSUPPORTED', modelJsonPath, `not a tfjs model.json (${(error as Error).message})`);
  }
  return parseTfjsGraph(json, modelJsonPath, (p) => readFile(join(dirname(modelJsonPath), p)));
}

/**
 * Reads a graph model as nsfwjs ships it: model.json and each weight shard wrapped in a
 * browserify UMD module (`model.min.js` exports the model as a JS object literal, not JSON;
 * `group1-shardNofM.min.js` a base64 string), so the package works in bundlers without fetching
 * files. The modules only build those constants, so each runs once in a fresh context with a
 * CommonJS `module`. Not require(): it takes a .js file for an ES module when the nearest
 * package.json says "type": "module" (this project's, for a cache inside it), and Node then
 * returns an empty namespace while the UMD wrapper sets a global instead.
 */
export async function readNsfwjsGraph(path: string): Promise<TfGraph> {
  const modelJsPath = resolve(path);
  const json = (await umdExports(modelJsPath, 'an nsfwjs model module')) as TfjsModelJson;
  return parseTfjsGraph(json, modelJsPath, async (p) => {
    const shard = join(dirname(modelJsPath), `${p}.min.js`);
    const b64 = await umdExports(shard, 'a weight shard module');
    if (typeof b64 !== 'string') throw createError('MODEL_UNSUPPORTED', shard, 'a weight shard module should export a base64 string');
    return Buffer.from(b64, 'base64');
  });
}

/** What a UMD module file assigns to module.exports, run as CommonJS whatever package.json is above it. */
async function umdExports(file: string, what: string): Promise<unknown> {
  let code: string;
  try {
    code = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw createError('FILE_NOT_FOUND', file);
    throw error;
  }
  const module = { exports: {} as unknown };
  try {
    runInNewContext(code, { module, exports: module.exports }, { filename: file });
  } catch (error) {
    throw createError('MODEL_UNSUPPORTED', file, `not ${what} (${(error as Error).message.split('\n')[0]})`);
  }
  return module.exports;
}

async function parseTfjsGraph(json: TfjsModelJson, source: string, readShard: (path: string) => Promise<Buffer>): Promise<TfGraph> {
  const topology = json.modelTopology?.node;
  if (!topology || !json.weightsManifest) throw createError('MODEL_UNSUPPORTED', source, 'no modelTopology.node or weightsManifest');
  const nodes = new Map(topology.map((n) => [n.name, n]));
  const weights = new Map<string, TfWeight>();
  for (const group of json.weightsManifest) {
    const bytes = Buffer.concat(await Promise.all(group.paths.map(readShard)));
    let offset = 0;
    for (const w of group.weights) {
      const count = w.shape.reduce((a, b) => a * b, 1);
      const q = w.quantization;
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      if (offset + count * (q?.dtype === 'uint8' ? 1 : q ? 2 : 4) > bytes.length) throw createError('MODEL_UNSUPPORTED', source, `weight ${w.name} runs past the end of its shards`);
      let data: Float32Array | Int32Array;
      let stored: TfWeight['stored'];
      if (q?.dtype === 'float16') {
        data = new Float32Array(count);
        const bits = new Uint16Array(count);
        for (let i = 0; i < count; i++) data[i] = halfToFloat((bits[i] = view.getUint16(offset + 2 * i, true)));
        stored = { kind: 'float16', bits };
        offset += 2 * count;
      } else if (q?.dtype === 'uint8' || q?.dtype === 'uint16') {
        const size = q.dtype === 'uint8' ? 1 : 2;
        data = new Float32Array(count);
        for (let i = 0; i < count; i++) {
          const v = size === 1 ? view.getUint8(offset + i) : view.getUint16(offset + 2 * i, true);
          data[i] = (q.min ?? 0) + v * (q.scale ?? 1);
        }
        if (size === 1) stored = { kind: 'uint8', codes: bytes.subarray(offset, offset + count), min: q.min ?? 0, scale: q.scale ?? 1 };
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
      weights.set(w.name, { dtype: q ? 'float32' : w.dtype, shape: w.shape, data, ...(stored ? { stored } : {}) });
    }
  }
  return { nodes, weights };
}

export const attrString = (a: TfAttr | undefined): string => (a?.s ? Buffer.from(a.s, 'base64').toString('utf8') : '');
export const attrInts = (a: TfAttr | undefined): number[] => (a?.list?.i ?? []).map(Number);
export const attrStrings = (a: TfAttr | undefined): string[] => (a?.list?.s ?? []).map((s) => Buffer.from(s, 'base64').toString('utf8'));
