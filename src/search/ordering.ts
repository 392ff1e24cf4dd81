/**
 * The one ordering of a candidate list, used by the engine and (through it) by evaluation:
 *   1. fusion of stage-1 and stage-2 scores (fusion.ts) when stage 2 scored the candidates;
 *   2. best fused score first; equal scores keep their stage-1 order;
 *   3. optional MMR over the ordered pool, picking `take` items.
 * Candidates stage 2 did not score (beyond k1) follow in stage-1 order.
 */
import { fuse, ranksOf, type FusionOptions } from './fusion.js';
import { mmr } from './mmr.js';
import type { FusionMode } from './options.js';

export interface OrderInput {
  /** stage-1 scores, best first (the stage-1 ranking) */
  stage1: number[];
  /** stage-2 scores of the first stage2.length candidates, when stage 2 ran */
  stage2?: number[];
  fusion: FusionMode;
  fusionOptions: FusionOptions;
  /** MMR λ in (0, 1]; 1: none */
  mmr: number;
  /** the candidates' vectors, needed only when mmr < 1 */
  vectors?: Float32Array[];
  /** how many to return (MMR picks this many from the whole pool) */
  take: number;
}

export interface Ordered {
  /** candidate positions in the stage-1 list, final order */
  order: number[];
  /** the score each candidate is ordered by (fused where stage 2 ran, else stage 1) */
  scores: number[];
  /** stage-2 rank of each scored candidate (1-based) */
  stage2Ranks?: number[];
}

export function orderCandidates(o: OrderInput): Ordered {
  const n = o.stage1.length;
  const scored = o.stage2 ? o.stage2.length : 0;
  const head = o.stage2 ? fuse(o.stage1.slice(0, scored), o.stage2, o.fusion, o.fusionOptions) : [];
  const scores = [...head, ...o.stage1.slice(scored)];
  const byScore = (a: number, b: number) => scores[b]! - scores[a]! || a - b;
  const reordered = Array.from({ length: scored }, (_, i) => i).sort(byScore);
  let order = [...reordered, ...Array.from({ length: n - scored }, (_, i) => scored + i)];
  if (o.mmr < 1 && order.length > 1) {
    if (!o.vectors) throw new Error("orderCandidates: MMR needs the candidates' vectors");
    // fused and stage-1 scores are on different scales: MMR runs over a pool that is all one or the other
    if (o.stage2 && scored < n) throw new Error('orderCandidates: MMR needs stage 2 to score the whole pool');
    const picked = mmr(order.map((i) => scores[i]!), order.map((i) => o.vectors![i]!), o.mmr, o.take);
    order = picked.map((p) => order[p]!);
  }
  return { order: order.slice(0, o.take), scores, stage2Ranks: o.stage2 ? ranksOf(o.stage2) : undefined };
}
