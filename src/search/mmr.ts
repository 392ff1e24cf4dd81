/**
 * Maximal marginal relevance (Carbonell & Goldstein 1998): picks, one at a time, the item
 * maximising λ · relevance − (1 − λ) · max similarity to those already picked. λ = 1 is the
 * plain ranking; lower λ trades relevance for variety (near-duplicate photos drop down).
 * Relevance is min-max normalised so it is on the scale of cosine similarity.
 */
export function mmr(relevance: number[], vectors: Float32Array[], lambda: number, k: number): number[] {
  const n = relevance.length;
  const lo = Math.min(...relevance);
  const hi = Math.max(...relevance);
  const rel = relevance.map((r) => (hi > lo ? (r - lo) / (hi - lo) : 1));
  const picked: number[] = [];
  const maxSim = new Float64Array(n).fill(-Infinity);
  const left = new Set(Array.from({ length: n }, (_, i) => i));
  while (picked.length < Math.min(k, n)) {
    let best = -1;
    let bestScore = -Infinity;
    for (const i of left) {
      const redundancy = picked.length === 0 ? 0 : maxSim[i]!;
      const score = lambda * rel[i]! - (1 - lambda) * redundancy;
      if (score > bestScore) {
        bestScore = score;
        best = i;
      }
    }
    picked.push(best);
    left.delete(best);
    for (const i of left) {
      let dot = 0;
      const a = vectors[i]!;
      const b = vectors[best]!;
      for (let j = 0; j < a.length; j++) dot += a[j]! * b[j]!;
      maxSim[i] = Math.max(maxSim[i]!, dot);
    }
  }
  return picked;
}
