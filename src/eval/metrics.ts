/**
 * Retrieval metrics from the 1-based rank of the first relevant item per query
 * (Infinity when a query's relevant items are missing from what was ranked).
 */
import type { RecallIntervals } from './bootstrap.js';

export interface RankMetrics {
  'R@1': number;
  'R@5': number;
  'R@10': number;
  MRR: number;
  medianRank: number;
  queries: number;
  /** 95% intervals of the recalls, resampling the split's images (bootstrap.ts); set by the evaluations users run, not by training's per-epoch scores */
  interval95?: RecallIntervals;
}

/** Recall@K in percent: the share of queries whose first relevant item is within the top K. */
export function recallAt(ranks: number[], k: number): number {
  if (ranks.length === 0) return 0;
  return (100 * ranks.filter((r) => r <= k).length) / ranks.length;
}

/** Mean reciprocal rank in 0..1; a missing item counts 0. */
export function meanReciprocalRank(ranks: number[]): number {
  if (ranks.length === 0) return 0;
  return ranks.reduce((s, r) => s + (Number.isFinite(r) ? 1 / r : 0), 0) / ranks.length;
}

/** The median rank, averaging the two middle ranks for an even count (Infinity if most are missing). */
export function medianRank(ranks: number[]): number {
  if (ranks.length === 0) return NaN;
  const s = [...ranks].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function rankMetrics(ranks: number[]): RankMetrics {
  return {
    'R@1': recallAt(ranks, 1),
    'R@5': recallAt(ranks, 5),
    'R@10': recallAt(ranks, 10),
    MRR: meanReciprocalRank(ranks),
    medianRank: medianRank(ranks),
    queries: ranks.length,
  };
}

/**
 * Rank of the best relevant item in one row of scores, counting ties against the query:
 * rank = 1 + #(irrelevant items scoring ≥ the best relevant score). A model that gives
 * every item the same score so gets the worst rank, not the best.
 */
export function firstRelevantRank(scores: Float32Array, relevant: ArrayLike<number>): number {
  let best = -Infinity;
  for (let i = 0; i < relevant.length; i++) best = Math.max(best, scores[relevant[i]!]!);
  if (best === -Infinity) return Infinity;
  const isRelevant = new Set(Array.from(relevant));
  let ahead = 0;
  for (let j = 0; j < scores.length; j++) if (!isRelevant.has(j) && scores[j]! >= best) ahead++;
  return ahead + 1;
}

/**
 * Ranks (1-based, ascending) of every relevant item in a row of scores, ties counted against
 * the query: an item ranks behind everything that scores higher and every irrelevant item that
 * scores the same. Relevant items missing from the row get Infinity.
 */
export function relevantRanks(scores: ArrayLike<number>, relevant: ArrayLike<number>): number[] {
  const isRelevant = new Set(Array.from(relevant));
  const ranks: number[] = [];
  for (const r of isRelevant) {
    const s = scores[r];
    if (s === undefined) {
      ranks.push(Infinity);
      continue;
    }
    let ahead = 0;
    for (let j = 0; j < scores.length; j++) {
      if (j === r) continue;
      if (scores[j]! > s || (scores[j] === s && !isRelevant.has(j))) ahead++;
    }
    ranks.push(ahead + 1);
  }
  return ranks.sort((a, b) => a - b);
}

/** Average precision of one query from its relevant items' ranks (ascending; Infinity = never retrieved). */
export function averagePrecision(ranks: number[]): number {
  if (ranks.length === 0) return 0;
  let sum = 0;
  ranks.forEach((r, j) => {
    if (Number.isFinite(r)) sum += (j + 1) / Math.max(r, j + 1);
  });
  return sum / ranks.length;
}

/** Precision@K of one query: relevant items in the top K, over K. */
export function precisionAt(ranks: number[], k: number): number {
  return ranks.filter((r) => r <= k).length / k;
}

export interface FullMetrics extends RankMetrics {
  'R@20': number;
  mAP: number;
  'P@1': number;
  'P@5': number;
  'P@10': number;
}

/** Every metric of the report from each query's relevant ranks (recall and MRR by the first relevant item). */
export function fullMetrics(queries: number[][]): FullMetrics {
  const first = queries.map((r) => r[0] ?? Infinity);
  const mean = (f: (r: number[]) => number) => (queries.length === 0 ? 0 : queries.reduce((s, r) => s + f(r), 0) / queries.length);
  return {
    ...rankMetrics(first),
    'R@20': recallAt(first, 20),
    mAP: mean(averagePrecision),
    'P@1': 100 * mean((r) => precisionAt(r, 1)),
    'P@5': 100 * mean((r) => precisionAt(r, 5)),
    'P@10': 100 * mean((r) => precisionAt(r, 10)),
  };
}

/** R@1 + R@5 + R@10 of one direction: what a fusion α and a cross-encoder epoch are chosen by. */
export const recallSum = (m: Pick<RankMetrics, 'R@1' | 'R@5' | 'R@10'>): number => m['R@1'] + m['R@5'] + m['R@10'];

/** How chooseAlpha breaks ties, as manifests and help texts state it. */
export const ALPHA_TIE_RULE = 'ties go to the higher R@1, then to the smaller α';

/**
 * The fusion α of the rows with the best R@1 + R@5 + R@10 (recallSum); ties go to the higher
 * R@1, then to the smaller α. One rule for every place that chooses α on dev (duo tune-fusion, train-cross's
 * epochs and export-cross), so the same numbers give a pack the same α whichever wrote it.
 */
export function chooseAlpha(rows: { alpha: number; 'R@1': number; rsum: number }[]): number {
  if (rows.length === 0) throw new Error('chooseAlpha: no rows');
  const eps = 1e-9; // recalls are sums of shares of the same query count: equal counts give equal floats, this only absorbs rounding
  const better = (a: (typeof rows)[number], b: (typeof rows)[number]) =>
    a.rsum > b.rsum + eps || (Math.abs(a.rsum - b.rsum) <= eps && (a['R@1'] > b['R@1'] + eps || (Math.abs(a['R@1'] - b['R@1']) <= eps && a.alpha < b.alpha)));
  return rows.reduce((best, r) => (better(r, best) ? r : best)).alpha;
}
