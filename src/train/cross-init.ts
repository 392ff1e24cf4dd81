/**
 * What a new starter cross-encoder starts from: seeded parameters, and the standardiser of the
 * backbone features, computed on the train images.
 */
import { BACKBONE_DIM } from '../models/starter/backbone.js';
import { featureVector, type BackboneFeatures } from '../models/starter/backbone-runner.js';
import { CELLS, globalDim, type CrossConfig, type GlobalKind, type Standardiser } from '../models/starter/cross-scoring.js';
import type { Params } from '../models/tensor-file.js';
import { INITIAL_LOG_SCALE, seeded } from './dual-encoder.js';

export function initCross(config: CrossConfig, seed: number): Params {
  const rand = seeded(seed);
  const gauss = (scale: number) => Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand()) * scale;
  const params: Params = new Map();
  params.set('tokens', Float32Array.from({ length: config.vocabSize * config.dim }, () => gauss(0.3 / Math.sqrt(config.dim))));
  params.set('cell.W', Float32Array.from({ length: BACKBONE_DIM * config.dim }, () => gauss(1 / Math.sqrt(BACKBONE_DIM))));
  params.set('cell.b', new Float32Array(config.dim));
  const width = globalDim(config);
  params.set('global.W', Float32Array.from({ length: width * config.dim }, () => gauss(1 / Math.sqrt(width))));
  params.set('global.b', new Float32Array(config.dim));
  params.set('logScale', Float32Array.from([INITIAL_LOG_SCALE]));
  return params;
}

/**
 * Per-channel mean and standard deviation of the grid cells and of the global input (`global`:
 * the pooled vector, or it and MobileNetV2's) over `features` (the train images).
 */
export function computeStandardiser(features: BackboneFeatures[], global: GlobalKind = 'pooled'): Standardiser {
  const width = globalDim({ global });
  const cellMean = new Float32Array(BACKBONE_DIM);
  const cellStd = new Float32Array(BACKBONE_DIM);
  const pooledMean = new Float32Array(width);
  const pooledStd = new Float32Array(width);
  const nc = features.length * CELLS;
  const g = features.map((f) => featureVector(f, global));
  for (const [i, f] of features.entries()) {
    for (let c = 0; c < BACKBONE_DIM; c++) for (let k = 0; k < CELLS; k++) cellMean[c]! += f.grid[c * CELLS + k]! / nc;
    for (let j = 0; j < width; j++) pooledMean[j]! += g[i]![j]! / features.length;
  }
  for (const [i, f] of features.entries()) {
    for (let c = 0; c < BACKBONE_DIM; c++) for (let k = 0; k < CELLS; k++) cellStd[c]! += (f.grid[c * CELLS + k]! - cellMean[c]!) ** 2 / nc;
    for (let j = 0; j < width; j++) pooledStd[j]! += (g[i]![j]! - pooledMean[j]!) ** 2 / features.length;
  }
  for (let c = 0; c < BACKBONE_DIM; c++) cellStd[c] = Math.sqrt(cellStd[c]!) + 1e-6;
  for (let j = 0; j < width; j++) pooledStd[j] = Math.sqrt(pooledStd[j]!) + 1e-6;
  return { cellMean, cellStd, pooledMean, pooledStd };
}
