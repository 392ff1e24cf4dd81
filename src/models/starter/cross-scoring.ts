/**
 * The starter cross-encoder's forward pass: its image side (standardised grid cells and the
 * pooled vector projected to unit d-dim regions, 17 per image: 4×4 cells + 1 global; a head's
 * global region can also read MobileNetV2's pooled vector, `global: 'pooled+mobilenet'`), unit
 * token vectors, so attention logits are cosines, and the scores of its heads. Regions are what
 * an index stores for stage 2, so reranking never runs the backbone again. Training
 * (src/train/train-cross.ts) runs the same functions and adds the backward pass.
 */
import { mat, matmul, normalizeRows, type Mat } from '../mat.js';
import type { Params } from '../tensor-file.js';
import { attentionScoresOnly, type TokenRows } from './attention.js';
import { BACKBONE_DIM, GRID } from './backbone.js';
import { featureDim, featureVector, type BackboneFeatures } from './backbone-runner.js';

export const CELLS = GRID * GRID;
export const REGIONS = CELLS + 1;

/** What a head's global region is projected from: CenterNet's pooled vector, or it and MobileNetV2's side by side. */
export type GlobalKind = 'pooled' | 'pooled+mobilenet';
export const GLOBAL_KINDS: readonly GlobalKind[] = ['pooled', 'pooled+mobilenet'];

export interface CrossConfig {
  vocabSize: number;
  dim: number;
  lambda: number;
  /** the global region's input (default `pooled`) */
  global?: GlobalKind;
}

/** Width of a head's global input. */
export const globalDim = (config: Pick<CrossConfig, 'global'>): number => featureDim(config.global ?? 'pooled');

/**
 * The global kind a standardiser was computed for, from its width. Heads whose global inputs
 * differ share one standardiser, the widest one: the pooled vector comes first in both kinds
 * and its statistics are the same train images', so a `pooled` head reads the first 560 of it.
 */
export function globalKindOf(s: Standardiser): GlobalKind {
  const kind = GLOBAL_KINDS.find((k) => featureDim(k) === s.pooledMean.length);
  if (!kind) throw new Error(`a cross-encoder standardiser of ${s.pooledMean.length} global inputs (${GLOBAL_KINDS.map((k) => `${k}: ${featureDim(k)}`).join(', ')})`);
  return kind;
}

export interface Standardiser {
  cellMean: Float32Array;
  cellStd: Float32Array;
  pooledMean: Float32Array;
  pooledStd: Float32Array;
}

/** The region projection's inputs: standardised cells (U·16 × 480) and global vectors (U × width, the standardiser's). */
export interface RegionInputs {
  cells: Float32Array;
  /** the global vectors: CenterNet's pooled vector, then MobileNetV2's when the standardiser is that wide */
  pooled: Float32Array;
}

/** Raw inputs of the region projection for a set of images: cells (U·16 × 480) and global vectors (U × the standardiser's width), standardised. */
export function regionInputs(features: BackboneFeatures[], s: Standardiser): RegionInputs {
  const kind = globalKindOf(s);
  const width = s.pooledMean.length;
  const cells = new Float32Array(features.length * CELLS * BACKBONE_DIM);
  const pooled = new Float32Array(features.length * width);
  features.forEach((f, u) => {
    // grid is channel-major (480 × 16): cell k's vector is grid[c·16 + k] over c
    for (let k = 0; k < CELLS; k++) {
      const o = (u * CELLS + k) * BACKBONE_DIM;
      for (let c = 0; c < BACKBONE_DIM; c++) cells[o + c] = (f.grid[c * CELLS + k]! - s.cellMean[c]!) / s.cellStd[c]!;
    }
    const g = featureVector(f, kind);
    for (let j = 0; j < width; j++) pooled[u * width + j] = (g[j]! - s.pooledMean[j]!) / s.pooledStd[j]!;
  });
  return { cells, pooled };
}

/** The first `width` columns of each of `u` rows of `inputs.pooled`: a head's global input when the shared standardiser is wider. */
export function globalInputs(inputs: RegionInputs, u: number, width: number): Float32Array {
  const have = u > 0 ? inputs.pooled.length / u : width;
  if (have === width) return inputs.pooled;
  if (have < width) throw new Error(`a head reads ${width} global inputs but the standardiser gives ${have}`);
  const out = new Float32Array(u * width);
  for (let i = 0; i < u; i++) out.set(inputs.pooled.subarray(i * have, i * have + width), i * width);
  return out;
}

/** Projected regions of the images stacked REGIONS rows each (16 cells, then the global vector), not yet unit length. */
export async function regionRows(params: Params, dim: number, inputs: RegionInputs): Promise<Mat> {
  const u = inputs.cells.length / (CELLS * BACKBONE_DIM);
  const width = params.get('global.W')!.length / dim;
  const rc = await matmul(mat(u * CELLS, BACKBONE_DIM, inputs.cells), mat(BACKBONE_DIM, dim, params.get('cell.W')!));
  const rg = await matmul(mat(u, width, globalInputs(inputs, u, width)), mat(width, dim, params.get('global.W')!));
  const cb = params.get('cell.b')!;
  const gb = params.get('global.b')!;
  const out = mat(u * REGIONS, dim);
  for (let i = 0; i < u; i++) {
    for (let k = 0; k < CELLS; k++) for (let j = 0; j < dim; j++) out.data[(i * REGIONS + k) * dim + j] = rc.data[(i * CELLS + k) * dim + j]! + cb[j]!;
    for (let j = 0; j < dim; j++) out.data[(i * REGIONS + CELLS) * dim + j] = rg.data[i * dim + j]! + gb[j]!;
  }
  return out;
}

/** Unit-length regions per image (REGIONS × dim each): what the index stores for stage 2. */
export async function projectRegions(params: Params, dim: number, inputs: RegionInputs): Promise<Float32Array[]> {
  const { y } = normalizeRows(await regionRows(params, dim, inputs));
  const size = REGIONS * dim;
  return Array.from({ length: y.rows / REGIONS }, (_, i) => y.data.slice(i * size, (i + 1) * size));
}

/** The token rows of several captions stacked (as looked up, not yet unit length), for attentionScores. */
export function stackTokens(params: Params, dim: number, captions: Int32Array[]): TokenRows {
  const total = captions.reduce((n, ids) => n + ids.length, 0);
  const raw = mat(total, dim);
  const owner = new Int32Array(total);
  const table = params.get('tokens')!;
  let r = 0;
  captions.forEach((ids, c) => {
    for (const id of ids) {
      raw.data.set(table.subarray(id * dim, (id + 1) * dim), r * dim);
      owner[r++] = c;
    }
  });
  return { T: raw, owner, counts: Int32Array.from(captions, (ids) => ids.length) };
}

/** The same with unit-length rows: what scoring reads. */
export function unitTokens(params: Params, dim: number, captions: Int32Array[]): TokenRows {
  const rows = stackTokens(params, dim, captions);
  return { ...rows, T: normalizeRows(rows.T).y };
}

/**
 * One trained attention model. A cross-encoder is one head or the mean of several trained
 * apart (an ensemble: heads that saw other tokens or seeds err on other pairs). Heads share the
 * vocabulary file; a head reads only the ids below its own vocabSize (word-only heads skip the
 * word pairs that follow the words).
 */
export interface CrossHead {
  config: CrossConfig;
  params: Params;
}

/** Every head's unit regions per image, head after head: what the index stores (REGIONS × Σ dim). */
export async function headRegions(heads: CrossHead[], inputs: RegionInputs): Promise<Float32Array[]> {
  const perHead = await Promise.all(heads.map((h) => projectRegions(h.params, h.config.dim, inputs)));
  const size = REGIONS * heads.reduce((n, h) => n + h.config.dim, 0);
  return perHead[0]!.map((_, i) => {
    const out = new Float32Array(size);
    let offset = 0;
    for (const r of perHead) {
      out.set(r[i]!, offset);
      offset += r[i]!.length;
    }
    return out;
  });
}

/**
 * Stacking buffers for crossScores, owned by one cross-encoder instance (never module-level, so
 * engines share none). A buffer is taken for one product and given back after it; queries that
 * overlap (a server awaits several at once) take different ones. A buffer's size follows its
 * batch's candidate count (every k1 ends in a batch of its own size), so idle buffers are
 * bounded in bytes as well as per size: past `maxBytes`, the sizes used least recently go first.
 */
export class StackBuffers {
  /** idle buffers by size, the size used least recently first */
  private readonly free = new Map<number, Float32Array[]>();
  private idleBytes = 0;

  /** at most `keep` idle buffers per size and `maxBytes` in all (16 MiB: four buffers of a full 64-candidate batch, 17 regions × 256 d, are 4.5 MiB) */
  constructor(
    private readonly keep = 4,
    private readonly maxBytes = 16 << 20,
  ) {}

  /** bytes held by idle buffers */
  get idle(): number {
    return this.idleBytes;
  }

  take(size: number): Float32Array {
    const buf = this.free.get(size)?.pop();
    if (!buf) return new Float32Array(size);
    this.idleBytes -= buf.byteLength;
    return buf;
  }

  give(buf: Float32Array): void {
    const size = buf.length;
    const list = this.free.get(size) ?? [];
    this.free.delete(size); // set again below, last: the size used most recently
    if (list.length < this.keep && buf.byteLength <= this.maxBytes) {
      // make room: the sizes used least recently give up their buffers first
      for (const [other, buffers] of this.free) {
        if (this.idleBytes + buf.byteLength <= this.maxBytes) break;
        while (buffers.length > 0 && this.idleBytes + buf.byteLength > this.maxBytes) this.idleBytes -= buffers.pop()!.byteLength;
        if (buffers.length === 0) this.free.delete(other);
      }
      if (this.idleBytes + buf.byteLength <= this.maxBytes) {
        list.push(buf);
        this.idleBytes += buf.byteLength;
      }
    }
    if (list.length > 0) this.free.set(size, list);
  }
}

/**
 * Scores (captions × images), the mean of the heads' attention scores; images as headRegions
 * lays them out. Scoring only: no gradient, so none of the caches training keeps.
 */
export async function crossScores(heads: CrossHead[], captions: Int32Array[], images: Float32Array[], buffers?: StackBuffers): Promise<Mat> {
  const S = mat(captions.length, images.length);
  let offset = 0;
  for (const { config, params } of heads) {
    const size = REGIONS * config.dim;
    const data = buffers ? buffers.take(images.length * size) : new Float32Array(images.length * size);
    try {
      // every element is written below, so a reused buffer needs no clearing
      for (let i = 0; i < images.length; i++) data.set(images[i]!.subarray(offset, offset + size), i * size);
      const ids = captions.map((c) => {
        const known = c.filter((id) => id < config.vocabSize);
        return known.length > 0 ? known : Int32Array.of(0);
      });
      const s = await attentionScoresOnly(unitTokens(params, config.dim, ids), mat(images.length * REGIONS, config.dim, data), REGIONS, config.lambda);
      for (let k = 0; k < S.data.length; k++) S.data[k]! += s.data[k]! / heads.length;
    } finally {
      buffers?.give(data);
    }
    offset += size;
  }
  return S;
}
