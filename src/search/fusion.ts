/**
 * Joining stage-1 and stage-2 scores of the same candidates:
 *   replace   stage 2 alone decides the order
 *   weighted  α · norm(stage 2) + (1 − α) · norm(stage 1), each normalised robustly over the
 *             candidate list (median and MAD, so one outlier cannot squash the rest; min-max
 *             is there to compare against)
 *   rrf       Σ 1 / (k + rank) over both rankings (Cormack et al. 2009), no scores needed
 */
import { FUSIONS, type FusionMode, type Normalisation } from './options.js';

export type { FusionMode, Normalisation };
export const FUSION_MODES: readonly FusionMode[] = FUSIONS;

export interface FusionOptions {
  alpha?: number;
  rrfK?: number;
  normalisation?: Normalisation;
}

export function ranksOf(scores: number[]): number[] {
  const order = scores.map((s, i) => [s, i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  const ranks = new Array<number>(scores.length);
  order.forEach(([, i], r) => (ranks[i] = r + 1));
  return ranks;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function normalise(scores: number[], how: Normalisation): number[] {
  if (scores.length === 0) return [];
  if (how === 'minmax') {
    const lo = Math.min(...scores);
    const hi = Math.max(...scores);
    return scores.map((s) => (hi > lo ? (s - lo) / (hi - lo) : 0));
  }
  const med = median(scores);
  let spread = 1.4826 * median(scores.map((s) => Math.abs(s - med)));
  if (!(spread > 0)) {
    const mean = scores.reduce((a, b) => a + b, 0) / scores.length;
    spread = Math.sqrt(scores.reduce((a, s) => a + (s - mean) ** 2, 0) / scores.length);
  }
  return scores.map((s) => (spread > 0 ? (s - med) / spread : 0));
}

/** Fused score per candidate (same order as the inputs); higher is better. */
export function fuse(stage1: number[], stage2: number[], mode: FusionMode, options: FusionOptions = {}): number[] {
  if (stage1.length !== stage2.length) throw new Error(`fuse: ${stage1.length} stage-1 scores for ${stage2.length} stage-2 scores`);
  if (mode === 'replace') return [...stage2];
  if (mode === 'rrf') {
    const k = options.rrfK ?? 60;
    const r1 = ranksOf(stage1);
    const r2 = ranksOf(stage2);
    return stage1.map((_, i) => 1 / (k + r1[i]!) + 1 / (k + r2[i]!));
  }
  const alpha = options.alpha ?? 0.5;
  const how = options.normalisation ?? 'robust';
  const n1 = normalise(stage1, how);
  const n2 = normalise(stage2, how);
  return n1.map((s, i) => alpha * n2[i]! + (1 - alpha) * s);
}
