/**
 * How far a Recall@K measured on one split can be trusted: a percentile bootstrap (Efron &
 * Tibshirani 1993) that resamples the split's images, not its queries. Flickr's five captions of
 * one image succeed or fail together far more often than five random captions would, so
 * resampling captions one by one would draw intervals up to √5 too narrow on text→image; an
 * image and its captions are one unit here (a cluster bootstrap).
 *
 * Two rankings of the same queries (hybrid against stage 1, one model against another) are
 * compared paired: each resample draws the same images for both, so what the two share cancels and
 * the difference gets its own, much narrower interval than either side's.
 *
 * Written here rather than taken from a package: the resampling is a dozen lines, and the npm
 * statistics packages resample single observations, not clusters of them.
 */
import { seeded } from '../util/random.js';

const RECALL_KS = [1, 5, 10] as const;
type RecallKey = 'R@1' | 'R@5' | 'R@10';

/** A 95% interval per Recall@K, in the metric's own unit (percent). */
export interface RecallIntervals {
  'R@1': [number, number];
  'R@5': [number, number];
  'R@10': [number, number];
  /** resamples drawn (each a resample of the units with replacement) */
  resamples: number;
  /** how many units (images) were resampled */
  units: number;
}

/** One ranking's Recall@K minus a baseline's on the same queries, with the difference's 95% interval. */
export type RecallDifference = Record<RecallKey, { diff: number; interval: [number, number] }> & { resamples: number; units: number };

export interface BootstrapOptions {
  /** resamples (default 1,000) */
  resamples?: number;
  /** the generator's seed (default 1): the same ranks give the same interval */
  seed?: number;
}

const DEFAULT_RESAMPLES = 1000;
const DEFAULT_SEED = 1;

/** What the intervals are, for the line under a table that shows them. */
export const INTERVAL_NOTE = `95% intervals: a bootstrap over the split's images (an image and its captions resampled together; ${DEFAULT_RESAMPLES.toLocaleString('en')} resamples, seed ${DEFAULT_SEED}); a difference is paired: both rankings resampled by the same draw`;

/** "58.6–63.0": an interval at a table's precision (one decimal: the interval is itself an estimate). */
export const formatInterval = (i: [number, number] | undefined): string => (i ? `${i[0].toFixed(1)}–${i[1].toFixed(1)}` : '–');

/** "+0.44" */
export const formatSigned = (x: number, digits: number): string => `${x >= 0 ? '+' : ''}${x.toFixed(digits)}`;

/** "-0.3 to +1.9": the interval of a difference. */
export const formatSignedInterval = (i: [number, number]): string => `${formatSigned(i[0], 1)} to ${formatSigned(i[1], 1)}`;

/** "+0.80 (-0.3 to +1.9)": a difference with its paired 95% interval. */
export const formatDifference = (d: { diff: number; interval: [number, number] } | undefined): string => (d ? `${formatSigned(d.diff, 2)} (${formatSignedInterval(d.interval)})` : '–');

/** Per unit: its query count and, per K, how many of its queries have their first relevant item within K. */
function tallies(ranks: number[], units: ArrayLike<string | number>): { count: Float64Array; hits: Float64Array[] } {
  if (ranks.length !== units.length) throw new Error(`bootstrap: ${ranks.length} ranks for ${units.length} unit labels`);
  if (ranks.length === 0) throw new Error('bootstrap: no queries to resample');
  const index = new Map<string | number, number>();
  const unitOf = Array.from(units, (u) => {
    let i = index.get(u);
    if (i === undefined) index.set(u, (i = index.size));
    return i;
  });
  const count = new Float64Array(index.size);
  const hits = RECALL_KS.map(() => new Float64Array(index.size));
  ranks.forEach((r, q) => {
    const u = unitOf[q]!;
    count[u]!++;
    RECALL_KS.forEach((k, j) => r <= k && hits[j]![u]!++);
  });
  return { count, hits };
}

/** The 2.5th and 97.5th percentiles of `xs` (sorted in place), by linear interpolation between order statistics. */
function percentiles95(xs: Float64Array): [number, number] {
  xs.sort();
  const at = (p: number) => {
    const x = p * (xs.length - 1);
    const lo = Math.floor(x);
    const hi = Math.min(lo + 1, xs.length - 1);
    return xs[lo]! + (x - lo) * (xs[hi]! - xs[lo]!);
  };
  return [at(0.025), at(0.975)];
}

/** How many resamples the options ask for, checked before anything is allocated for them. */
function resampleCount(o: BootstrapOptions): number {
  const n = o.resamples ?? DEFAULT_RESAMPLES;
  if (!Number.isInteger(n) || n < 2) throw new Error(`bootstrap: resamples must be an integer ≥ 2, got ${n}`);
  return n;
}

/**
 * Resamples units with replacement and hands `visit` each draw's per-unit multiplicities; one
 * seeded generator, so two calls with the same options draw the same resamples.
 */
function resample(units: number, n: number, o: BootstrapOptions, visit: (b: number, times: Uint32Array) => void): void {
  const rand = seeded(o.seed ?? DEFAULT_SEED);
  const times = new Uint32Array(units);
  for (let b = 0; b < n; b++) {
    times.fill(0);
    for (let i = 0; i < units; i++) times[Math.floor(rand() * units)]!++;
    visit(b, times);
  }
}

const shareOf = (hits: Float64Array, count: Float64Array, times: Uint32Array) => {
  let h = 0;
  let c = 0;
  for (let u = 0; u < times.length; u++) {
    h += times[u]! * hits[u]!;
    c += times[u]! * count[u]!;
  }
  return c > 0 ? (100 * h) / c : 0;
};

/**
 * 95% intervals of R@1, R@5 and R@10 for each query's first-relevant rank; `units[q]` names the
 * unit query q belongs to (its image), and units are what is resampled.
 */
export function recallIntervals(ranks: number[], units: ArrayLike<string | number>, o: BootstrapOptions = {}): RecallIntervals {
  const n = resampleCount(o);
  const { count, hits } = tallies(ranks, units);
  const draws = RECALL_KS.map(() => new Float64Array(n));
  resample(count.length, n, o, (b, times) => RECALL_KS.forEach((_, j) => (draws[j]![b] = shareOf(hits[j]!, count, times))));
  const [r1, r5, r10] = draws.map(percentiles95) as [[number, number], [number, number], [number, number]];
  return { 'R@1': r1, 'R@5': r5, 'R@10': r10, resamples: n, units: count.length };
}

/**
 * R@K of `ranks` minus R@K of `baseline` (the same queries, in the same order) and the paired
 * 95% interval of that difference: both are resampled by the same draw of units.
 */
export function recallDifference(ranks: number[], baseline: number[], units: ArrayLike<string | number>, o: BootstrapOptions = {}): RecallDifference {
  if (ranks.length !== baseline.length) throw new Error(`bootstrap: ${ranks.length} ranks against ${baseline.length} baseline ranks`);
  const n = resampleCount(o);
  const a = tallies(ranks, units);
  const b = tallies(baseline, units);
  const draws = RECALL_KS.map(() => new Float64Array(n));
  resample(a.count.length, n, o, (i, times) => RECALL_KS.forEach((_, j) => (draws[j]![i] = shareOf(a.hits[j]!, a.count, times) - shareOf(b.hits[j]!, b.count, times))));
  const all = new Uint32Array(a.count.length).fill(1);
  const out = { resamples: n, units: a.count.length } as RecallDifference;
  RECALL_KS.forEach((k, j) => {
    out[`R@${k}`] = { diff: shareOf(a.hits[j]!, a.count, all) - shareOf(b.hits[j]!, b.count, all), interval: percentiles95(draws[j]!) };
  });
  return out;
}
