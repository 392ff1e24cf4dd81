/** Linear warm-up over the first `warmupShare` of the steps, then cosine decay to zero. */
export function warmupCosine(step: number, total: number, base: number, warmupShare: number): number {
  const warmup = Math.max(1, Math.round(total * warmupShare));
  if (step < warmup) return (base * (step + 1)) / warmup;
  return 0.5 * base * (1 + Math.cos((Math.PI * (step - warmup)) / Math.max(1, total - warmup)));
}

/** Fisher–Yates: 0..n−1 in a uniformly random order drawn from `rand`. */
export function shuffle(n: number, rand: () => number): number[] {
  const a = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}
