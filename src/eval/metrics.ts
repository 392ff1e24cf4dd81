/**
 * Retrieval metrics from the 1-based rank of the first relevant item per query
 * (Infinity when a query's relevant items are missing from what was ranked).
 */
export interface RankMetrics {
  'R@1': number;
  'R@5': number;
  'R@10': number;
  MRR: number;
  medianRank: number;
  queries: number;
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
