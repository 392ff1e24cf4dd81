/**
 * What every store benchmark shares (bench/stores.bench.ts, and bench/stores-pg.ts when it
 * exists): the datasets, their held-out queries, the exact answers they are scored against,
 * the row format of bench/results/stores.json, and the measures.
 *
 * A hook file bench/stores-pg.ts, when present, is imported by stores.bench.ts and its default
 * export called once with a StoreBenchContext; the rows it returns go under `pgvector` in the
 * results (each row with `store: 'pgvector'`), and the table prints them with the others.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ExactIndex } from '../src/index/exact-index.js';
import { TopK } from '../src/index/top-k.js';
import { ClusteredVectors } from './stores-data.js';

export interface DatasetSpec {
  name: string;
  n: number;
  dim: number;
  seed: number;
}

export const DATASETS: DatasetSpec[] = [
  { name: '256d-100k', n: 100_000, dim: 256, seed: 1 },
  { name: '256d-1M', n: 1_000_000, dim: 256, seed: 1 },
  { name: '512d-100k', n: 100_000, dim: 512, seed: 2 },
];

/** a quick check of the benchmark itself, run only when named */
export const SMOKE: DatasetSpec = { name: 'smoke-20k', n: 20_000, dim: 256, seed: 1 };
export const findDataset = (name: string) => [...DATASETS, SMOKE].find((d) => d.name === name);

export const QUERIES = 500;
export const K = 10;
/** rows per upsert and flush while building (as an import would) */
export const BLOCK = 100_000;

/** ids look like photo paths, so the id ↔ key map costs what it would */
export const idOf = (i: number) => `photos/${String(Math.floor(i / 1000)).padStart(4, '0')}/img-${i}.jpg`;
export const rowOfId = (id: string) => Number(id.slice(id.lastIndexOf('-') + 1, -4));
/** metadata every row carries: `g` is the row modulo 100, for filters that keep 10% and 1% */
export const metadataOf = (i: number) => ({ g: i % 100 });
export const FILTERS = {
  '10%': { where: { g: { lt: 10 } }, keep: (i: number) => i % 100 < 10 },
  '1%': { where: { g: 7 }, keep: (i: number) => i % 100 === 7 },
} as const;
export type FilterName = keyof typeof FILTERS;

export const generator = (d: DatasetSpec) => new ClusteredVectors({ dim: d.dim, seed: d.seed });

/** The held-out queries: drawn like the rows, from another stream, never indexed. */
export function queriesOf(d: DatasetSpec): Float32Array[] {
  const flat = generator(d).rows(0, QUERIES, 1);
  return Array.from({ length: QUERIES }, (_, i) => flat.subarray(i * d.dim, (i + 1) * d.dim));
}

export interface Truth {
  /** exact top-10 rows per query, unfiltered and under each filter */
  all: number[][];
  filtered: Record<FilterName, number[][]>;
}

/** The exact top 10 of every query (computed once per dataset, block by block, and cached under runs/). */
export async function truthOf(d: DatasetSpec, cacheDir: string): Promise<Truth> {
  const path = join(cacheDir, `truth-${d.name}-s${d.seed}.json`);
  if (existsSync(path)) return JSON.parse(readFileSync(path, 'utf8')) as Truth;
  const qs = queriesOf(d);
  const gen = generator(d);
  const scan = new ExactIndex(d.dim, false);
  const heaps = { all: qs.map(() => new TopK(K)), ...Object.fromEntries(Object.keys(FILTERS).map((f) => [f, qs.map(() => new TopK(K))])) } as Record<'all' | FilterName, TopK[]>;
  const block = 50_000;
  for (let start = 0; start < d.n; start += block) {
    const count = Math.min(block, d.n - start);
    const rows = gen.rows(start, count);
    const parts: ['all' | FilterName, number[]][] = [['all', Array.from({ length: count }, (_, i) => i)]];
    for (const [name, f] of Object.entries(FILTERS)) parts.push([name as FilterName, Array.from({ length: count }, (_, i) => i).filter((i) => f.keep(start + i))]);
    for (const [name, local] of parts) {
      const m = new Float32Array(local.length * d.dim);
      local.forEach((r, j) => m.set(rows.subarray(r * d.dim, (r + 1) * d.dim), j * d.dim));
      const ranked = await scan.searchRows(qs, m, local.length, K);
      ranked.forEach((list, qi) => list.forEach(({ row, score }) => heaps[name][qi]!.push(score, start + local[row]!)));
    }
  }
  await scan.dispose();
  const rowsOf = (hs: TopK[]) => hs.map((h) => h.sorted().map((x) => x.row));
  const truth: Truth = { all: rowsOf(heaps.all), filtered: Object.fromEntries(Object.keys(FILTERS).map((f) => [f, rowsOf(heaps[f as FilterName])])) as Truth['filtered'] };
  mkdirSync(cacheDir, { recursive: true });
  writeFileSync(path, JSON.stringify(truth));
  return truth;
}

/** Share of the exact top 10 found, over all queries. */
export function recallAt10(found: string[][], truth: number[][]): number {
  let hit = 0;
  let total = 0;
  found.forEach((ids, i) => {
    const t = new Set(truth[i]!.slice(0, K));
    total += t.size;
    for (const id of ids.slice(0, K)) if (t.has(rowOfId(id))) hit++;
  });
  return total === 0 ? 1 : hit / total;
}

export function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

export const latency = (ms: number[]) => ({ p50: round(percentile(ms, 50), 3), p95: round(percentile(ms, 95), 3) });
export const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;

export interface StoreRow {
  dataset: string;
  n: number;
  dim: number;
  /** exact | usearch | pgvector */
  store: string;
  /** f32 | f16 | i8 (usearch), vector | halfvec (pgvector) */
  quantization?: string;
  connectivity?: number;
  expansionAdd?: number;
  expansionSearch?: number;
  buildSeconds: number;
  buildPeakRssMB: number;
  servePeakRssMB?: number;
  diskMB: number;
  openMs?: number;
  /** one query at a time: ms per query */
  single: { p50: number; p95: number };
  /** batches of 32 queries: ms per batch */
  batch32: { p50: number; p95: number };
  recallAt10: number;
  filtered?: Partial<Record<FilterName, { p50: number; p95: number; recallAt10: number }>>;
  commit: string;
  /** when the build was measured at another commit than the queries (--serve-only) */
  buildCommit?: string;
  note?: string;
}

export interface StoreBenchContext {
  datasets: DatasetSpec[];
  /** a folder under runs/ the hook may use */
  workDir: string;
  commit: string;
  queriesOf: typeof queriesOf;
  truthOf: (d: DatasetSpec) => Promise<Truth>;
  /** rows [start, start + count) of a dataset, L2-normalised, row-major */
  rowsOf: (d: DatasetSpec, start: number, count: number) => Float32Array;
}
