/**
 * `eval --mode hybrid`: the bidirectional protocol with stage 2 in the loop. For each query
 * the bi-encoder's top k1 go to the cross-encoder and are reordered by the fusion; items below
 * k1 keep their stage-1 order after them (stage 2 never sees them). A sweep over several k1
 * and fusion modes scores the largest k1 once per query and reuses those scores: a pair's
 * stage-2 score does not depend on which other candidates are in the list.
 */
import type { RetrievalDataset } from '../data/dataset.js';
import { loadImage, type DecodedImage } from '../data/image-loader.js';
import { TopK } from '../index/top-k.js';
import { dot } from '../index/exact-index.js';
import type { Encoder } from '../models/encoder.js';
import type { CrossEncoder } from '../models/reranker.js';
import { fuse, type FusionMode, type FusionOptions } from '../search/fusion.js';
import { fullMetrics, type FullMetrics } from './metrics.js';

export type Direction = 'textToImage' | 'imageToText';

export interface HybridEvalOptions extends FusionOptions {
  k1: number | number[];
  fusion: FusionMode | FusionMode[];
  /** evaluate at most this many queries per direction (all by default) */
  maxQueries?: number;
  directions?: Direction[];
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
  textToImage?: FullMetrics;
  imageToText?: FullMetrics;
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
  configs: HybridConfigResult[];
  /** per query, at the largest k1: stage 1 (exact search over the split), stage 2 and both */
  latencyMs: { stage1: LatencyStats; stage2: LatencyStats; total: LatencyStats };
  /** raw per-query latencies (ms), for distributions */
  latencySamples: { stage1: number[]; stage2: number[] };
  queries: QueryRecord[];
  /** the first config's fields, for single-config callers */
  textToImage?: FullMetrics;
  imageToText?: FullMetrics;
}

export const configKey = (k1: number, fusion: FusionMode) => `k1=${k1} ${fusion}`;

function topAll(q: Float32Array, rows: Float32Array[]): { rows: number[]; scores: number[] } {
  const heap = new TopK(rows.length);
  rows.forEach((r, i) => heap.push(dot(q, r, 0, r.length), i));
  const s = heap.sorted();
  return { rows: s.map((x) => x.row), scores: s.map((x) => x.score) };
}

/** Ranks of every relevant item once the top k1 are reordered by `fused`; below k1, stage-1 order. */
function hybridRanks(order1: number[], k1: number, fused: number[], relevant: Set<number>): number[] {
  const head = order1.slice(0, k1).map((c, i) => [c, fused[i]!, i] as const).sort((a, b) => b[1] - a[1] || a[2] - b[2]).map(([c]) => c);
  const order = [...head, ...order1.slice(k1)];
  const ranks: number[] = [];
  order.forEach((c, i) => relevant.has(c) && ranks.push(i + 1));
  while (ranks.length < relevant.size) ranks.push(Infinity);
  return ranks;
}

export async function evaluateHybrid(ds: RetrievalDataset, encoder: Encoder, reranker: CrossEncoder, o: HybridEvalOptions): Promise<HybridEvalResult> {
  const k1s = [o.k1].flat();
  const fusions = [o.fusion].flat();
  const kMax = Math.max(...k1s);
  const images = await encoder.encodeImages(ds.images.map((i) => i.source), { onProgress: (d, n) => o.onProgress?.('images', d, n) });
  const texts = await encoder.encodeTexts(ds.captions.map((c) => c.text));
  const imageIndex = new Map(ds.images.map((img, i) => [img.id, i]));
  const captionImage = ds.captions.map((c) => imageIndex.get(c.imageId)!);
  const decoded = new Map<number, DecodedImage>();
  const image = async (i: number) => {
    let d = decoded.get(i);
    if (!d) {
      d = await loadImage(ds.images[i]!.source);
      decoded.set(i, d);
    }
    return d;
  };
  const s1: number[] = [];
  const s2: number[] = [];
  const ranks = new Map<string, { textToImage: number[][]; imageToText: number[][] }>();
  for (const k1 of k1s) for (const f of fusions) ranks.set(configKey(k1, f), { textToImage: [], imageToText: [] });
  const stage1 = { textToImage: [] as number[][], imageToText: [] as number[][] };
  const queries: QueryRecord[] = [];
  const record = (dir: Direction, query: string, relevantIds: string[], top: { rows: number[]; scores: number[] }, scores: number[], relevant: Set<number>) => {
    const s1: number[] = [];
    top.rows.forEach((r, i) => relevant.has(r) && s1.push(i + 1));
    stage1[dir].push(s1);
    const hybrid: Record<string, number> = {};
    for (const k1 of k1s) {
      for (const f of fusions) {
        const fused = fuse(top.scores.slice(0, k1), scores.slice(0, k1), f, o);
        const r = hybridRanks(top.rows, k1, fused, relevant);
        ranks.get(configKey(k1, f))![dir].push(r);
        hybrid[configKey(k1, f)] = r[0]!;
      }
    }
    queries.push({ direction: dir, query, relevant: relevantIds, stage1: s1[0] ?? Infinity, hybrid });
  };
  const directions = o.directions ?? ['textToImage', 'imageToText'];

  if (directions.includes('textToImage')) {
    const n = Math.min(o.maxQueries ?? texts.length, texts.length);
    for (let c = 0; c < n; c++) {
      let t = performance.now();
      const top = topAll(texts[c]!, images);
      s1.push(performance.now() - t);
      const cand = top.rows.slice(0, kMax);
      t = performance.now();
      const candidates = await Promise.all(cand.map(async (i, j) => ({ id: ds.images[i]!.id, image: await image(i), stage1Score: top.scores[j]! })));
      const { scores } = await reranker.score({ text: ds.captions[c]!.text }, candidates);
      s2.push(performance.now() - t);
      record('textToImage', ds.captions[c]!.text, [ds.images[captionImage[c]!]!.id], top, scores, new Set([captionImage[c]!]));
      o.onProgress?.('text→image queries', c + 1, n);
    }
  }
  if (directions.includes('imageToText')) {
    const captionsOf = ds.images.map(() => new Set<number>());
    captionImage.forEach((img, c) => captionsOf[img]!.add(c));
    const n = Math.min(o.maxQueries ?? images.length, images.length);
    for (let i = 0; i < n; i++) {
      const top = topAll(images[i]!, texts);
      const cand = top.rows.slice(0, kMax);
      const { scores } = await reranker.score({ image: await image(i) }, cand.map((c, j) => ({ id: `caption:${c}`, text: ds.captions[c]!.text, stage1Score: top.scores[j]! })));
      record('imageToText', ds.images[i]!.id, [...captionsOf[i]!].map((c) => ds.captions[c]!.text), top, scores, captionsOf[i]!);
      o.onProgress?.('image→text queries', i + 1, n);
    }
  }
  const metrics = (xs: number[][]) => (xs.length > 0 ? fullMetrics(xs) : undefined);
  const configs = k1s.flatMap((k1) =>
    fusions.map((fusion) => {
      const r = ranks.get(configKey(k1, fusion))!;
      return { k1, fusion, textToImage: metrics(r.textToImage), imageToText: metrics(r.imageToText) };
    }),
  );
  return {
    stage1: { textToImage: metrics(stage1.textToImage), imageToText: metrics(stage1.imageToText) },
    configs,
    latencyMs: { stage1: latencyStats(s1), stage2: latencyStats(s2), total: latencyStats(s1.map((x, i) => x + (s2[i] ?? 0))) },
    latencySamples: { stage1: s1, stage2: s2 },
    queries,
    textToImage: configs[0]?.textToImage,
    imageToText: configs[0]?.imageToText,
  };
}
