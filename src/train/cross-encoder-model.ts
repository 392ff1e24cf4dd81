/**
 * The starter cross-encoder's parameters and its image side: standardised grid cells and the
 * pooled vector projected to d-dim regions (17 per image: 4×4 cells + 1 global). Regions are
 * what an index stores for stage 2, so reranking never runs the backbone again.
 */
import { BACKBONE_DIM, GRID } from '../models/starter/backbone.js';
import { POOLED_DIM, type BackboneFeatures } from '../models/starter/backbone-runner.js';
import { mat, matmul } from './matmul.js';
import type { Params } from './layers.js';
import { seeded } from './dual-encoder.js';

export const CELLS = GRID * GRID;
export const REGIONS = CELLS + 1;

export interface CrossConfig {
  vocabSize: number;
  dim: number;
  lambda: number;
}

export interface Standardiser {
  cellMean: Float32Array;
  cellStd: Float32Array;
  pooledMean: Float32Array;
  pooledStd: Float32Array;
}

export function initCross(config: CrossConfig, seed: number): Params {
  const rand = seeded(seed);
  const gauss = (scale: number) => Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand()) * scale;
  const params: Params = new Map();
  params.set('tokens', Float32Array.from({ length: config.vocabSize * config.dim }, () => gauss(0.3 / Math.sqrt(config.dim))));
  params.set('cell.W', Float32Array.from({ length: BACKBONE_DIM * config.dim }, () => gauss(1 / Math.sqrt(BACKBONE_DIM))));
  params.set('cell.b', new Float32Array(config.dim));
  params.set('global.W', Float32Array.from({ length: POOLED_DIM * config.dim }, () => gauss(1 / Math.sqrt(POOLED_DIM))));
  params.set('global.b', new Float32Array(config.dim));
  return params;
}

/** Raw inputs of the region projection for a set of images: cells (U·16 × 480) and pooled (U × 560), standardised. */
export function regionInputs(features: BackboneFeatures[], s: Standardiser): { cells: Float32Array; pooled: Float32Array } {
  const cells = new Float32Array(features.length * CELLS * BACKBONE_DIM);
  const pooled = new Float32Array(features.length * POOLED_DIM);
  features.forEach((f, u) => {
    // grid is channel-major (480 × 16): cell k's vector is grid[c·16 + k] over c
    for (let k = 0; k < CELLS; k++) {
      const o = (u * CELLS + k) * BACKBONE_DIM;
      for (let c = 0; c < BACKBONE_DIM; c++) cells[o + c] = (f.grid[c * CELLS + k]! - s.cellMean[c]!) / s.cellStd[c]!;
    }
    for (let j = 0; j < POOLED_DIM; j++) pooled[u * POOLED_DIM + j] = (f.pooled[j]! - s.pooledMean[j]!) / s.pooledStd[j]!;
  });
  return { cells, pooled };
}

/** Projected regions per image (REGIONS × dim each). */
export async function projectRegions(params: Params, dim: number, inputs: { cells: Float32Array; pooled: Float32Array }): Promise<Float32Array[]> {
  const u = inputs.pooled.length / POOLED_DIM;
  const rc = await matmul(mat(u * CELLS, BACKBONE_DIM, inputs.cells), mat(BACKBONE_DIM, dim, params.get('cell.W')!));
  const rg = await matmul(mat(u, POOLED_DIM, inputs.pooled), mat(POOLED_DIM, dim, params.get('global.W')!));
  const cb = params.get('cell.b')!;
  const gb = params.get('global.b')!;
  return Array.from({ length: u }, (_, i) => {
    const r = new Float32Array(REGIONS * dim);
    for (let k = 0; k < CELLS; k++) for (let j = 0; j < dim; j++) r[k * dim + j] = rc.data[(i * CELLS + k) * dim + j]! + cb[j]!;
    for (let j = 0; j < dim; j++) r[CELLS * dim + j] = rg.data[i * dim + j]! + gb[j]!;
    return r;
  });
}

export function tokenVectors(params: Params, dim: number, ids: Int32Array): Float32Array {
  const table = params.get('tokens')!;
  const out = new Float32Array(ids.length * dim);
  ids.forEach((id, i) => out.set(table.subarray(id * dim, (id + 1) * dim), i * dim));
  return out;
}

export function computeStandardiser(features: BackboneFeatures[]): Standardiser {
  const cellMean = new Float32Array(BACKBONE_DIM);
  const cellStd = new Float32Array(BACKBONE_DIM);
  const pooledMean = new Float32Array(POOLED_DIM);
  const pooledStd = new Float32Array(POOLED_DIM);
  const nc = features.length * CELLS;
  for (const f of features) {
    for (let c = 0; c < BACKBONE_DIM; c++) for (let k = 0; k < CELLS; k++) cellMean[c]! += f.grid[c * CELLS + k]! / nc;
    for (let j = 0; j < POOLED_DIM; j++) pooledMean[j]! += f.pooled[j]! / features.length;
  }
  for (const f of features) {
    for (let c = 0; c < BACKBONE_DIM; c++) for (let k = 0; k < CELLS; k++) cellStd[c]! += (f.grid[c * CELLS + k]! - cellMean[c]!) ** 2 / nc;
    for (let j = 0; j < POOLED_DIM; j++) pooledStd[j]! += (f.pooled[j]! - pooledMean[j]!) ** 2 / features.length;
  }
  for (let c = 0; c < BACKBONE_DIM; c++) cellStd[c] = Math.sqrt(cellStd[c]!) + 1e-6;
  for (let j = 0; j < POOLED_DIM; j++) pooledStd[j] = Math.sqrt(pooledStd[j]!) + 1e-6;
  return { cellMean, cellStd, pooledMean, pooledStd };
}
