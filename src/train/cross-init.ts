/**
 * What a new starter cross-encoder starts from: seeded parameters, and the standardiser of the
 * backbone features, computed on the train images.
 */
import { BACKBONE_DIM } from '../models/starter/backbone.js';
import { POOLED_DIM, type BackboneFeatures } from '../models/starter/backbone-runner.js';
import { CELLS, type CrossConfig, type Standardiser } from '../models/starter/cross-scoring.js';
import type { Params } from '../models/tensor-file.js';
import { INITIAL_LOG_SCALE, seeded } from './dual-encoder.js';

export function initCross(config: CrossConfig, seed: number): Params {
  const rand = seeded(seed);
  const gauss = (scale: number) => Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand()) * scale;
  const params: Params = new Map();
  params.set('tokens', Float32Array.from({ length: config.vocabSize * config.dim }, () => gauss(0.3 / Math.sqrt(config.dim))));
  params.set('cell.W', Float32Array.from({ length: BACKBONE_DIM * config.dim }, () => gauss(1 / Math.sqrt(BACKBONE_DIM))));
  params.set('cell.b', new Float32Array(config.dim));
  params.set('global.W', Float32Array.from({ length: POOLED_DIM * config.dim }, () => gauss(1 / Math.sqrt(POOLED_DIM))));
  params.set('global.b', new Float32Array(config.dim));
  params.set('logScale', Float32Array.from([INITIAL_LOG_SCALE]));
  return params;
}

/** Per-channel mean and standard deviation of the grid cells and of the pooled vector over `features` (the train images). */
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
