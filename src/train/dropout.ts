/** Training-time dropout shared by the trainers, drawing from the run's seeded `rand`. */

/** Inverted dropout in place: each value is zeroed with probability `rate`, the rest scaled by 1/(1 − rate). */
export function dropFeatures(x: Float32Array, rate: number, rand: () => number): void {
  if (rate <= 0) return;
  const keep = 1 - rate;
  for (let i = 0; i < x.length; i++) x[i] = rand() < keep ? x[i]! / keep : 0;
}

/** A caption with each word dropped with probability `rate`; never emptied, one-word captions kept whole. */
export function dropWords(ids: Int32Array, rate: number, rand: () => number): Int32Array {
  if (rate <= 0 || ids.length < 2) return ids;
  const kept = ids.filter(() => rand() >= rate);
  return kept.length > 0 ? Int32Array.from(kept) : ids;
}
