/**
 * Which scan an index folder uses, and how `--ann auto|on|off` and the `--ann-*` flags decide it,
 * for every command that creates or extends an index (`duo index`, `duo import`):
 *
 *   exact  every vector in memory, scanned per query (ExactIndex): exact results, instant builds
 *   hnsw   a usearch HNSW graph saved beside the segments (hnsw-index.ts): sub-millisecond
 *          queries over millions of items, approximate (recall@10 ≥ 0.98 at the defaults)
 *
 * The defaults and the auto threshold come from `npm run bench:stores` (bench/results/stores.json).
 */
import { createError } from '../errors.js';

export const QUANTIZATIONS = ['f32', 'f16', 'i8'] as const;
export type Quantization = (typeof QUANTIZATIONS)[number];

export interface HnswSettings {
  kind: 'hnsw';
  /** how the graph stores vectors; f16 and i8 results are re-scored with the f32 rows */
  quantization: Quantization;
  /** links per node (HNSW's M) */
  connectivity: number;
  /** candidates kept while inserting (efConstruction) */
  expansionAdd: number;
  /** candidates kept while searching (ef): recall against speed */
  expansionSearch: number;
}

export type AnnSettings = { kind: 'exact' } | HnswSettings;

export const EXACT: AnnSettings = { kind: 'exact' };

/**
 * Chosen by bench/stores.bench.ts for recall@10 ≥ 0.98 with p95 ≤ 2 ms over 1M 256-d vectors on
 * 2 cores: connectivity 16 with expansion 128 builds 2.5x faster but tops out near 0.93 there
 * (its graph misses neighbours no search expansion finds); i8 builds fastest and is the
 * smallest, and re-scoring its candidates with the f32 rows makes its recall f32's.
 */
export const DEFAULT_HNSW: HnswSettings = { kind: 'hnsw', quantization: 'i8', connectivity: 32, expansionAdd: 256, expansionSearch: 256 };

/**
 * `--ann auto` builds HNSW once items × dimension reaches this (100,000 items at 256-d, 50,000
 * at 512-d): below it an exact scan answers one query in about 4 ms here, exactly, and needs no
 * build; above it its cost grows with the collection (80 ms over 1M × 256-d) while HNSW stays
 * under a millisecond (bench/results/stores.json).
 */
export const ANN_AUTO_MIN_WORK = 25_600_000;

/** The item count from which `--ann auto` picks HNSW at this dimension. */
export const annAutoMinItems = (dim: number) => Math.ceil(ANN_AUTO_MIN_WORK / dim);

export type AnnMode = 'auto' | 'on' | 'off';

/** The command-line flags (src/cli/ann-options.ts registers them). */
export interface AnnFlags {
  ann?: AnnMode;
  annQuantization?: Quantization;
  annConnectivity?: number;
  annExpansion?: number;
}

/** What a writer asks of an index: the flags, and how many items it will hold after this run. */
export interface AnnRequest extends AnnFlags {
  count: number;
}

/**
 * The store options for `duo index` and `duo import`: pass the result to `openStore(path,
 * { write: true, create: info, ...storeOptionsFor(count, flags) })`. `count` is how many items
 * the index will hold after the run as far as the caller knows (the store uses the larger of it
 * and what the index already holds).
 */
export function storeOptionsFor(count: number, flags: AnnFlags = {}): { ann: AnnRequest } {
  // refused before anything is opened or created
  const s = resolveAnn({ ...flags, ann: flags.ann === 'off' ? 'off' : 'on', count }, undefined, 0, 1);
  if (s.kind === 'hnsw') checkHnswSettings(s);
  return { ann: { ...flags, count } };
}

const hnswFlagGiven = (r: AnnFlags) => r.annQuantization !== undefined || r.annConnectivity !== undefined || r.annExpansion !== undefined;

/**
 * The scan an index should use. A new index (`recorded` undefined) follows the request (auto when
 * `--ann` is not given; exact when there is no request at all, as for caption indexes). An
 * existing index keeps what it recorded unless `--ann` asks otherwise; the `--ann-*` flags
 * change the settings of an HNSW index. The store converts on the next flush.
 */
export function resolveAnn(request: AnnRequest | undefined, recorded: AnnSettings | undefined, held: number, dim: number): AnnSettings {
  if (!request) return recorded ?? EXACT;
  if (request.ann === 'off' && hnswFlagGiven(request)) throw createError('BAD_ARGUMENT', '--ann off', 'the --ann-* settings apply to an HNSW index: drop them or --ann off');
  let kind: AnnSettings['kind'];
  if (request.ann === undefined && recorded) {
    kind = recorded.kind;
    if (kind === 'exact' && hnswFlagGiven(request)) throw createError('BAD_ARGUMENT', '--ann-*', 'this index is exact; add --ann on to convert it to HNSW with these settings');
  } else {
    const mode = request.ann ?? 'auto';
    kind = mode === 'on' || (mode === 'auto' && Math.max(request.count, held) >= annAutoMinItems(dim)) ? 'hnsw' : 'exact';
  }
  if (kind === 'exact') return EXACT;
  const base = recorded?.kind === 'hnsw' ? recorded : DEFAULT_HNSW;
  return {
    kind: 'hnsw',
    quantization: request.annQuantization ?? base.quantization,
    connectivity: request.annConnectivity ?? base.connectivity,
    expansionAdd: base.expansionAdd,
    expansionSearch: request.annExpansion ?? base.expansionSearch,
  };
}

/** Whether going from `a` to `b` needs the graph built again (the search expansion does not). */
export const needsRebuild = (a: AnnSettings, b: AnnSettings): boolean =>
  a.kind !== b.kind || (a.kind === 'hnsw' && b.kind === 'hnsw' && (a.quantization !== b.quantization || a.connectivity !== b.connectivity));

export function checkHnswSettings(s: HnswSettings): HnswSettings {
  if (!QUANTIZATIONS.includes(s.quantization)) throw createError('BAD_ARGUMENT', '--ann-quantization', `one of ${QUANTIZATIONS.join(', ')}, got "${s.quantization}"`);
  if (!Number.isInteger(s.connectivity) || s.connectivity < 2 || s.connectivity > 256) throw createError('BAD_ARGUMENT', '--ann-connectivity', `an integer from 2 to 256, got ${s.connectivity}`);
  for (const [flag, v] of [['--ann-expansion', s.expansionSearch], ['expansionAdd', s.expansionAdd]] as const) {
    if (!Number.isInteger(v) || v < 1 || v > 100_000) throw createError('BAD_ARGUMENT', flag, `an integer from 1 to 100000, got ${v}`);
  }
  return s;
}

export const describeAnn = (s: AnnSettings): string =>
  s.kind === 'exact' ? 'exact' : `HNSW ${s.quantization}, connectivity ${s.connectivity}, expansion ${s.expansionAdd}/${s.expansionSearch}`;
