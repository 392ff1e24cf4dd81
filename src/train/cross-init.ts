/**
 * What a new starter cross-encoder starts from: seeded parameters, and the standardiser of the
 * backbone features, computed on the train images.
 */
import { BACKBONE_DIM } from '../models/starter/backbone.js';
import { featureVector, type BackboneFeatures } from '../models/starter/backbone-runner.js';
import { CELLS, globalDim, type CrossConfig, type GlobalKind, type Standardiser } from '../models/starter/cross-scoring.js';
import type { Params } from '../models/tensor-file.js';
import { INITIAL_LOG_SCALE, seeded } from './dual-encoder.js';
import { gaussian } from '../util/random.js';
import { gloveInitialEmbed } from './open-vocab/glove-init.js';

export function initCross(config: CrossConfig, seed: number): Params {
  const rand = seeded(seed);
  const gauss = (scale: number) => gaussian(rand) * scale;
  const params: Params = new Map();
  params.set('tokens', Float32Array.from({ length: config.vocabSize * config.dim }, () => gauss(TOKEN_INIT_NORM / Math.sqrt(config.dim))));
  params.set('cell.W', Float32Array.from({ length: BACKBONE_DIM * config.dim }, () => gauss(1 / Math.sqrt(BACKBONE_DIM))));
  params.set('cell.b', new Float32Array(config.dim));
  const width = globalDim(config);
  params.set('global.W', Float32Array.from({ length: width * config.dim }, () => gauss(1 / Math.sqrt(width))));
  params.set('global.b', new Float32Array(config.dim));
  params.set('logScale', Float32Array.from([INITIAL_LOG_SCALE]));
  return params;
}

/** The scale of a token row at initialisation (each component N(0, (0.3/√dim)²): rows of length ≈ 0.3). */
const TOKEN_INIT_NORM = 0.3;

/**
 * Token rows that start from GloVe (`duo train-cross --init-glove`), as `duo train --init-glove`
 * starts word vectors: a word GloVe has starts as its GloVe row through a fixed seeded random
 * projection to dim; a word pair ("red shirt") as the sum of its two words' rows when both have
 * one; the others get a seeded random direction of their own. Every row has the length of
 * initCross's rows, so only directions differ. Returns the table and how many tokens GloVe gave.
 */
export async function gloveTokens(tokens: string[], dim: number, seed: number): Promise<{ table: Float32Array; found: number }> {
  const words = [...new Set(tokens.flatMap((t) => t.split(' ')))];
  const { embed, hit } = await gloveInitialEmbed(words, dim, seed);
  const row = new Map(words.map((w, i) => [w, embed.subarray(i * dim, (i + 1) * dim)]));
  const fromGlove = new Set(words.filter((_, i) => hit[i]));
  const rand = seeded(seed);
  const table = new Float32Array(tokens.length * dim);
  let found = 0;
  tokens.forEach((t, id) => {
    const parts = t.split(' ');
    let v: Float32Array;
    if (parts.every((w) => fromGlove.has(w))) {
      v = new Float32Array(dim);
      for (const w of parts) row.get(w)!.forEach((x, k) => (v[k]! += x));
      found++;
    } else v = Float32Array.from({ length: dim }, () => gaussian(rand));
    const n = Math.hypot(...v) || 1;
    table.set(v.map((x) => (x / n) * TOKEN_INIT_NORM), id * dim);
  });
  return { table, found };
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
