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
import { rankMetrics, type RankMetrics } from './metrics.js';

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
  textToImage?: RankMetrics;
  imageToText?: RankMetrics;
}

export interface HybridEvalResult {
  stage1: { textToImage?: RankMetrics; imageToText?: RankMetrics };
  configs: HybridConfigResult[];
  /** per query, at the largest k1: stage 1 (exact search over the split) and stage 2 */
  latencyMs: { stage1: LatencyStats; stage2: LatencyStats };
  /** the first config's fields, for single-config callers */
  textToImage?: RankMetrics;
  imageToText?: RankMetrics;
}

function topAll(q: Float32Array, rows: Float32Array[]): { rows: number[]; scores: number[] } {
  const heap = new TopK(rows.length);
  rows.forEach((r, i) => heap.push(dot(q, r, 0, r.length), i));
  const s = heap.sorted();
  return { rows: s.map((x) => x.row), scores: s.map((x) => x.score) };
}

/** Rank of the best relevant item once the top k1 are reordered by `fused`; below k1, stage-1 order. */
function hybridRank(candidates: number[], fused: number[], relevant: Set<number>, stage1Rank: number): number {
  const order = candidates.map((c, i) => [c, fused[i]!] as const).sort((a, b) => b[1] - a[1]);
  const at = order.findIndex(([c]) => relevant.has(c));
  return at >= 0 ? at + 1 : stage1Rank;
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
  const key = (k1: number, f: FusionMode) => `${k1}|${f}`;
  const ranks = new Map<string, { textToImage: number[]; imageToText: number[] }>();
  for (const k1 of k1s) for (const f of fusions) ranks.set(key(k1, f), { textToImage: [], imageToText: [] });
  const stage1 = { textToImage: [] as number[], imageToText: [] as number[] };
  const record = (dir: Direction, top: { rows: number[]; scores: number[] }, scores: number[], relevant: Set<number>) => {
    const stage1Rank = top.rows.findIndex((r) => relevant.has(r)) + 1;
    stage1[dir].push(stage1Rank);
    for (const k1 of k1s) {
      for (const f of fusions) {
        const fused = fuse(top.scores.slice(0, k1), scores.slice(0, k1), f, o);
        ranks.get(key(k1, f))![dir].push(hybridRank(top.rows.slice(0, k1), fused, relevant, stage1Rank));
      }
    }
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
      record('textToImage', top, scores, new Set([captionImage[c]!]));
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
      record('imageToText', top, scores, captionsOf[i]!);
      o.onProgress?.('image→text queries', i + 1, n);
    }
  }
  const metrics = (xs: number[]) => (xs.length > 0 ? rankMetrics(xs) : undefined);
  const configs = [...ranks].map(([k, r]) => {
    const [k1, fusion] = k.split('|') as [string, FusionMode];
    return { k1: Number(k1), fusion, textToImage: metrics(r.textToImage), imageToText: metrics(r.imageToText) };
  });
  return {
    stage1: { textToImage: metrics(stage1.textToImage), imageToText: metrics(stage1.imageToText) },
    configs,
    latencyMs: { stage1: latencyStats(s1), stage2: latencyStats(s2) },
    textToImage: configs[0]?.textToImage,
    imageToText: configs[0]?.imageToText,
  };
}
