/**
 * Hubness correction with a bank of typical queries (querybank normalisation: Bogolin et al.,
 * "Cross Modal Retrieval with Querybank Normalisation", CVPR 2022; the inverted softmax of Smith
 * et al. 2017). In a shared embedding space some items are "hubs": near to very many queries,
 * they crowd the top of unrelated result lists. An item's hubness is how strongly it attracts a
 * bank of queries drawn from training data, h(g) = (1/β) · log Σ_b exp(β · cos(b, g)), and
 * a cross-modal search ranks by cos(q, g) − λ · h(g): the dynamic inverted softmax without its
 * query-side gate, so h depends on the item alone and is computed once, when the item is
 * indexed (stored in its metadata as `hubness`), not per query.
 *
 * A pack names its bank in its manifest (`queryBank`): caption embeddings for image items
 * (text→image) and image embeddings for caption items (image→text), as int8 rows, with β and λ.
 * The bank file is part of the pack's id (the stored h values follow from it and β); λ is used at
 * query time only.
 */
import { join } from 'node:path';
import { createError, DuoError } from '../errors.js';
import { loadTensors } from './tensor-file.js';
import { isPackEntry } from './model-source.js';

/** The metadata key an indexed item's hubness is stored under. */
export const HUBNESS_KEY = 'hubness';

/** How many of the store's top items the engine's correction reorders at least: the hybrid evaluation's largest k1, so its k1 rows are what users get. */
export const HUBNESS_POOL = 200;

export interface QueryBank {
  /** caption embeddings, count × dim: what image items are measured against */
  texts: Float32Array;
  /** image embeddings, count × dim: what caption items are measured against */
  images: Float32Array;
  dim: number;
  /** the log-sum-exp's sharpness (an inverse temperature) */
  beta: number;
  /** how much of an item's hubness a cross-modal score loses */
  lambda: number;
}

export interface QueryBankManifest {
  file: string;
  texts: number;
  images: number;
  beta: number;
  lambda: number;
  [key: string]: unknown;
}

/** Each vector's hubness against `bank` (count × dim rows): (1/β) · log Σ_b exp(β · v·b), computed stably. */
export function hubnessOf(vectors: Float32Array[], bank: Float32Array, dim: number, beta: number): number[] {
  const count = bank.length / dim;
  const s = new Float64Array(count);
  return vectors.map((v) => {
    let max = -Infinity;
    for (let b = 0; b < count; b++) {
      let dot = 0;
      for (let k = 0, o = b * dim; k < dim; k++) dot += v[k]! * bank[o + k]!;
      s[b] = beta * dot;
      if (s[b]! > max) max = s[b]!;
    }
    let sum = 0;
    for (let b = 0; b < count; b++) sum += Math.exp(s[b]! - max);
    return (max + Math.log(sum)) / beta;
  });
}

/** `score − λ·hubness` for items that carry a hubness; items without one (indexed without a bank) keep their score. */
export function correctedScores(scores: number[], hubness: (number | undefined)[], lambda: number): number[] {
  return scores.map((s, i) => (typeof hubness[i] === 'number' ? s - lambda * hubness[i]! : s));
}

/**
 * A whole row of cosines as the engine ranks it (search/engine.ts): the top `pool` by cosine take
 * cosine − λ·h and come first; the rest follow in cosine order (shifted below every corrected
 * score), as items the store did not return for the correction. What evaluation scores stage 1 by.
 */
export function correctedRow(scores: Float32Array, hubness: number[], lambda: number, pool: number): Float32Array {
  if (scores.length <= pool) return Float32Array.from(correctedScores(Array.from(scores), hubness, lambda));
  const threshold = Float32Array.from(scores).sort().reverse()[pool - 1]!;
  // below any corrected score: cosines are within [−1, 1] and λ·h stays far under 10
  const SHIFT = 100;
  return scores.map((x, i) => (x >= threshold ? x - lambda * hubness[i]! : x - SHIFT));
}

/** Reads a pack's bank, checking its shape against the manifest entry and the encoder's dimension. */
export async function loadQueryBank(dir: string, entry: QueryBankManifest, dim: number): Promise<QueryBank> {
  const where = join(dir, 'manifest.json');
  // a file of the pack: nothing outside it is read
  if (!isPackEntry(entry.file)) throw createError('MODEL_UNSUPPORTED', where, `queryBank.file must be a file name inside the pack, not ${JSON.stringify(entry.file)}`);
  const path = join(dir, entry.file);
  for (const key of ['texts', 'images'] as const) {
    if (!(Number.isInteger(entry[key]) && entry[key] > 0)) throw createError('MODEL_UNSUPPORTED', where, `queryBank.${key} is ${JSON.stringify(entry[key])}, not a count above 0`);
  }
  for (const key of ['beta', 'lambda'] as const) {
    if (!(typeof entry[key] === 'number' && Number.isFinite(entry[key]) && entry[key] >= 0)) throw createError('MODEL_UNSUPPORTED', where, `queryBank.${key} is ${JSON.stringify(entry[key])}, not a number ≥ 0`);
  }
  if (!(entry.beta > 0)) throw createError('MODEL_UNSUPPORTED', where, 'queryBank.beta must be above 0');
  let t;
  try {
    t = await loadTensors(path);
  } catch (error) {
    if (error instanceof DuoError && error.code === 'FILE_NOT_FOUND') throw error;
    throw createError('MODEL_UNSUPPORTED', path, `not a readable tensor file (${error instanceof DuoError ? String(error.args[1]) : (error as Error).message})`);
  }
  const texts = t.get('texts');
  const images = t.get('images');
  if (!texts || !images || texts.length !== entry.texts * dim || images.length !== entry.images * dim) {
    throw createError('MODEL_UNSUPPORTED', path, `does not hold ${entry.texts} text and ${entry.images} image rows of ${dim}`);
  }
  return { texts, images, dim, beta: entry.beta, lambda: entry.lambda };
}
