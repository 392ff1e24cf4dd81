/**
 * `eval --mode hybrid`: the bidirectional protocol with stage 2 in the loop, run through the
 * engine itself (SearchEngine over in-memory stores built as `duo index` builds them), so the
 * numbers measure what users run. For each query the engine returns its top k1 (the largest
 * k1 of a sweep) with both stages' scores; each configuration of the sweep is then ordered by
 * the engine's own ordering function (ordering.ts) over its first k1 candidates, and items
 * below k1 keep their stage-1 order after them (stage 2 never sees them). A pair's stage-2
 * score does not depend on which other candidates are in the list, so one pass serves all
 * (every k1, fusion and weighted-fusion α of a sweep: no further cross-encoder calls).
 */
import { datasetCaptions } from '../data/caption-file.js';
import type { RetrievalDataset } from '../data/dataset.js';
import { DuoError } from '../errors.js';
import { captionIndexInfo, indexCaptions } from '../index/build-caption-index.js';
import { imageIndexInfo } from '../index/build-index.js';
import { ExactStore } from '../index/exact-store.js';
import { indexImages } from '../index/index-images.js';
import type { StoreInfo } from '../index/vector-store.js';
import type { Encoder, ImageInput } from '../models/encoder.js';
import type { CrossEncoder, RerankDirection } from '../models/reranker.js';
import { SearchEngine, type EngineResponse, type Query } from '../search/engine.js';
import type { FusionOptions } from '../search/fusion.js';
import type { ExpansionTable } from '../search/expansion-table.js';
import { defaultAlpha, type FusionMode } from '../search/options.js';
import type { ExpandWeights } from '../search/query-expansion.js';
import { orderCandidates } from '../search/ordering.js';
import { recallDifference, recallIntervals, type RecallDifference } from './bootstrap.js';
import { fullMetrics, type FullMetrics } from './metrics.js';

export type Direction = RerankDirection;

export interface HybridEvalOptions extends Omit<FusionOptions, 'alpha'> {
  k1: number | number[];
  fusion: FusionMode | FusionMode[];
  /** weighted fusion's α, both directions; a list sweeps it (one config per α); unset: the cross-encoder's own per direction */
  alpha?: number | number[];
  /** evaluate at most this many queries per direction (all by default) */
  maxQueries?: number;
  directions?: Direction[];
  /** query expansion, as the engine's `expand` option runs it (with this table) */
  expand?: { weights: ExpandWeights; table: ExpansionTable };
  onProgress?: (stage: string, done: number, total: number) => void;
}

export interface LatencyStats {
  mean: number;
  p50: number;
  p95: number;
  p99: number;
}

export const latencyStats = (xs: number[]): LatencyStats => {
  const s = [...xs].sort((a, b) => a - b);
  const at = (p: number) => s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? 0;
  return { mean: s.reduce((a, b) => a + b, 0) / Math.max(1, s.length), p50: at(50), p95: at(95), p99: at(99) };
};

export interface HybridConfigResult {
  k1: number;
  fusion: FusionMode;
  /** weighted fusion: the α each direction was ordered with */
  alpha?: Record<Direction, number>;
  textToImage?: FullMetrics;
  imageToText?: FullMetrics;
  /** this config's R@K minus stage 1's on the same queries, with the paired 95% interval (resampling images) */
  vsStage1: { textToImage?: RecallDifference; imageToText?: RecallDifference };
}

/** One query's outcome: the rank of its first relevant item under stage 1 and under each config. */
export interface QueryRecord {
  direction: Direction;
  query: string;
  relevant: string[];
  stage1: number;
  hybrid: Record<string, number>;
}

export interface HybridEvalResult {
  stage1: { textToImage?: FullMetrics; imageToText?: FullMetrics };
  /** the (first) weighted-fusion α per direction: the one given, else the cross-encoder's own */
  alpha: Record<Direction, number>;
  configs: HybridConfigResult[];
  /** per query, at the largest k1, as the engine timed them: encode + stage 1, stage 2, and the whole */
  latencyMs: { stage1: LatencyStats; stage2: LatencyStats; total: LatencyStats };
  /** raw per-query latencies (ms), for distributions */
  latencySamples: { stage1: number[]; stage2: number[] };
  queries: QueryRecord[];
  /** queries the engine refused (no word the model knows): counted as misses */
  refused: number;
  /** the first config's fields, for single-config callers */
  textToImage?: FullMetrics;
  imageToText?: FullMetrics;
}

/** a config's name (QueryRecord.hybrid's keys); `alpha` only in an α sweep, and only for weighted fusion */
export const configKey = (k1: number, fusion: FusionMode, alpha?: number) => `k1=${k1} ${fusion}${alpha !== undefined && fusion === 'weighted' ? ` α=${alpha}` : ''}`;

/** Ranks of every relevant item once the first k1 candidates are ordered as the engine orders them; below k1, stage-1 order. */
function hybridRanks(head: EngineResponse['results'], tail: string[], k1: number, fusion: FusionMode, o: FusionOptions, relevant: Set<string>): number[] {
  const first = [...head].sort((a, b) => a.stage1.rank - b.stage1.rank).slice(0, k1);
  const { order } = orderCandidates({ stage1: first.map((h) => h.stage1.score), stage2: first.map((h) => h.stage2!.score), fusion, fusionOptions: o, mmr: 1, take: first.length });
  const inHead = new Set(first.map((h) => h.id));
  return relevantRanks([...order.map((i) => first[i]!.id), ...tail.filter((id) => !inHead.has(id))], relevant);
}

/** 1-based positions of the relevant ids in a ranking, best first; one Infinity per relevant id it lacks. */
function relevantRanks(ids: string[], relevant: Set<string>): number[] {
  const ranks: number[] = [];
  ids.forEach((id, i) => relevant.has(id) && ranks.push(i + 1));
  while (ranks.length < relevant.size) ranks.push(Infinity);
  return ranks;
}

/** A store in memory, built as `duo index` builds one; it loads no model again, so it records the encoder's id where an index records the spec. */
const inMemory = (info: StoreInfo, encoder: Encoder) => ExactStore.memory({ ...info, modelSpec: encoder.id });

export async function evaluateHybrid(ds: RetrievalDataset, encoder: Encoder, reranker: CrossEncoder, o: HybridEvalOptions): Promise<HybridEvalResult> {
  const k1s = [o.k1].flat();
  const fusions = [o.fusion].flat();
  const kMax = Math.max(...k1s);
  // undefined: the cross-encoder's own α for the direction
  const alphas: (number | undefined)[] = o.alpha === undefined ? [undefined] : [...new Set([o.alpha].flat())];
  const alphaOf = (a: number | undefined, dir: Direction) => a ?? defaultAlpha(reranker, dir);
  /** every config of the sweep: weighted fusion once per α, the others once */
  const configs = k1s.flatMap((k1) =>
    fusions.flatMap((fusion) =>
      (fusion === 'weighted' ? alphas : [undefined]).map((a) => ({ k1, fusion, alpha: a, key: configKey(k1, fusion, alphas.length > 1 ? a : undefined) })),
    ),
  );
  const directions = o.directions ?? ['textToImage', 'imageToText'];
  const sourceOf = new Map<string, ImageInput>(ds.images.map((i) => [i.id, i.source]));
  const captions = datasetCaptions(ds);

  const ranks = new Map<string, { textToImage: number[][]; imageToText: number[][] }>();
  for (const c of configs) ranks.set(c.key, { textToImage: [], imageToText: [] });
  const stage1 = { textToImage: [] as number[][], imageToText: [] as number[][] };
  /** each query's image, the unit the bootstrap resamples (bootstrap.ts) */
  const units = { textToImage: [] as string[], imageToText: [] as string[] };
  const queries: QueryRecord[] = [];
  const s1: number[] = [];
  const s2: number[] = [];
  let refused = 0;

  /** One query through the engine: hybrid over the top kMax, and the full stage-1 ranking for the tail. */
  const run = async (engine: SearchEngine, dir: Direction, query: Query, label: string, relevantIds: string[], n: number, unit: string) => {
    const relevant = new Set(relevantIds);
    const record = (stage1Ranks: number[], hybrid: (c: (typeof configs)[number]) => number[]) => {
      stage1[dir].push(stage1Ranks);
      units[dir].push(unit);
      const byConfig: Record<string, number> = {};
      for (const c of configs) {
        const r = hybrid(c);
        ranks.get(c.key)![dir].push(r);
        byConfig[c.key] = r[0] ?? Infinity;
      }
      queries.push({ direction: dir, query: label, relevant: relevantIds, stage1: stage1Ranks[0] ?? Infinity, hybrid: byConfig });
    };
    let response: EngineResponse;
    try {
      [response] = (await engine.search([query], { mode: 'hybrid', k: kMax, k1: kMax, fusion: fusions[0], alpha: alphas[0], rrfK: o.rrfK, normalisation: o.normalisation, budgetMs: 600_000, ...expand })) as [EngineResponse];
    } catch (error) {
      if (!(error instanceof DuoError && error.code === 'QUERY_NOT_UNDERSTOOD')) throw error;
      refused++;
      const miss = () => relevantIds.map(() => Infinity);
      record(miss(), miss);
      return;
    }
    if (response.fallback) throw new Error(`evaluation: the engine fell back to stage 1 for "${label}": ${response.fallback}`);
    // the ranking below k1 is stage 1's: the engine's stage-1 search over the whole split
    const [full] = (await engine.search([query], { mode: 'stage1', k: n, ...expand })) as [EngineResponse];
    const tail = full.results.map((h) => h.id);
    const stage1Ranks = relevantRanks(tail, relevant);
    s1.push(response.latencyMs.encode + response.latencyMs.stage1);
    s2.push(response.latencyMs.stage2);
    record(stage1Ranks, (c) => hybridRanks(response.results, tail, c.k1, c.fusion, { rrfK: o.rrfK, normalisation: o.normalisation, alpha: alphaOf(c.alpha, dir) }, relevant));
  };

  // cached query embeddings let the stage-1 pass reuse the hybrid pass's encoding; responses are not cached
  const settings = { cacheBytes: { embeddings: 64 << 20, responses: 0 } };
  const expand = o.expand
    ? { expand: true, expandSynonym: o.expand.weights.synonym, expandHypernym: o.expand.weights.hypernym, expandCaption: o.expand.weights.caption }
    : {};
  const expansions = () => o.expand?.table;
  if (directions.includes('textToImage')) {
    const store = inMemory(await imageIndexInfo({ root: '/', encoder, modelSpec: '', reranker, rerankerSpec: reranker.id }), encoder);
    try {
      const { failed } = await indexImages(store, ds.images.map((i) => ({ id: i.id, source: i.source })), { encoder, reranker, onProgress: (d, n) => o.onProgress?.('images', d, n) });
      if (failed.length > 0) throw new Error(`evaluation: ${failed.length} images could not be read, e.g. ${failed[0]!.id}: ${failed[0]!.error}`);
      const engine = new SearchEngine({ store, encoder, reranker, imageOf: (id) => sourceOf.get(id)!, expansions }, settings);
      const n = Math.min(o.maxQueries ?? captions.length, captions.length);
      for (let c = 0; c < n; c++) {
        const caption = captions[c]!;
        await run(engine, 'textToImage', { text: caption.text }, caption.text, [String(caption.meta!.image)], ds.images.length, String(caption.meta!.image));
        o.onProgress?.('text→image queries', c + 1, n);
      }
    } finally {
      await store.close();
    }
  }
  if (directions.includes('imageToText')) {
    const store = inMemory(captionIndexInfo({ encoder, modelSpec: '', source: '/' }), encoder);
    try {
      await indexCaptions(store, captions, encoder);
      const engine = new SearchEngine({ store, encoder, reranker, expansions }, settings);
      const captionsOf = new Map<string, string[]>();
      for (const c of captions) captionsOf.set(String(c.meta!.image), [...(captionsOf.get(String(c.meta!.image)) ?? []), c.id]);
      const n = Math.min(o.maxQueries ?? ds.images.length, ds.images.length);
      for (let i = 0; i < n; i++) {
        const image = ds.images[i]!;
        await run(engine, 'imageToText', { image: image.source }, image.id, captionsOf.get(image.id) ?? [], captions.length, image.id);
        o.onProgress?.('image→text queries', i + 1, n);
      }
    } finally {
      await store.close();
    }
  }
  const first = (xs: number[][]) => xs.map((r) => r[0] ?? Infinity); // an image without captions has no relevant rank: a miss, as fullMetrics counts it
  const metrics = (xs: number[][], dir: Direction) => (xs.length > 0 ? { ...fullMetrics(xs), interval95: recallIntervals(first(xs), units[dir]) } : undefined);
  const stage1First = { textToImage: first(stage1.textToImage), imageToText: first(stage1.imageToText) };
  const versus = (xs: number[][], dir: Direction) => (xs.length > 0 ? recallDifference(first(xs), stage1First[dir], units[dir]) : undefined);
  const results: HybridConfigResult[] = configs.map((c) => {
    const r = ranks.get(c.key)!;
    const alpha = c.fusion === 'weighted' ? { alpha: { textToImage: alphaOf(c.alpha, 'textToImage'), imageToText: alphaOf(c.alpha, 'imageToText') } } : {};
    return {
      k1: c.k1,
      fusion: c.fusion,
      ...alpha,
      textToImage: metrics(r.textToImage, 'textToImage'),
      imageToText: metrics(r.imageToText, 'imageToText'),
      vsStage1: { textToImage: versus(r.textToImage, 'textToImage'), imageToText: versus(r.imageToText, 'imageToText') },
    };
  });
  return {
    stage1: { textToImage: metrics(stage1.textToImage, 'textToImage'), imageToText: metrics(stage1.imageToText, 'imageToText') },
    alpha: { textToImage: alphaOf(alphas[0], 'textToImage'), imageToText: alphaOf(alphas[0], 'imageToText') },
    configs: results,
    latencyMs: { stage1: latencyStats(s1), stage2: latencyStats(s2), total: latencyStats(s1.map((x, i) => x + (s2[i] ?? 0))) },
    latencySamples: { stage1: s1, stage2: s2 },
    queries,
    refused,
    textToImage: results[0]?.textToImage,
    imageToText: results[0]?.imageToText,
  };
}
