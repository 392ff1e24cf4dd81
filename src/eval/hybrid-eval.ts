/**
 * `eval --mode hybrid`: the same bidirectional protocol, with stage 2 in the loop. For each
 * query the bi-encoder's top k1 go to the cross-encoder and are reordered by the fusion;
 * items below k1 keep their stage-1 order after them (stage 2 never sees them), so recall at
 * K > k1 equals stage 1's. Latency is measured per stage.
 */
import type { RetrievalDataset } from '../data/dataset.js';
import { loadImage, type DecodedImage } from '../data/image-loader.js';
import { TopK } from '../index/top-k.js';
import { dot } from '../index/exact-index.js';
import type { Encoder } from '../models/encoder.js';
import type { CrossEncoder } from '../models/reranker.js';
import { fuse, type FusionMode, type FusionOptions } from '../search/fusion.js';
import { rankMetrics, type RankMetrics } from './metrics.js';

export interface HybridEvalOptions extends FusionOptions {
  k1: number;
  fusion: FusionMode;
  /** evaluate text→image on at most this many captions (all by default) */
  maxQueries?: number;
  directions?: ('textToImage' | 'imageToText')[];
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

export interface HybridEvalResult {
  textToImage?: RankMetrics;
  imageToText?: RankMetrics;
  latencyMs: { stage1: LatencyStats; stage2: LatencyStats };
}

function topK(q: Float32Array, rows: Float32Array[], k: number): { rows: number[]; scores: number[] } {
  const heap = new TopK(k);
  rows.forEach((r, i) => heap.push(dot(q, r, 0, r.length), i));
  const s = heap.sorted();
  return { rows: s.map((x) => x.row), scores: s.map((x) => x.score) };
}

/** Rank of the best relevant item once the top k1 are reordered by `fused` and the rest keep stage-1 order. */
function hybridRank(candidates: number[], fused: number[], relevant: Set<number>, stage1RankOfFirstRelevant: number): number {
  const order = candidates.map((c, i) => [c, fused[i]!] as const).sort((a, b) => b[1] - a[1]);
  const at = order.findIndex(([c]) => relevant.has(c));
  return at >= 0 ? at + 1 : stage1RankOfFirstRelevant;
}

export async function evaluateHybrid(ds: RetrievalDataset, encoder: Encoder, reranker: CrossEncoder, o: HybridEvalOptions): Promise<HybridEvalResult> {
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
  const out: HybridEvalResult = { latencyMs: { stage1: latencyStats([]), stage2: latencyStats([]) } };
  const directions = o.directions ?? ['textToImage', 'imageToText'];

  if (directions.includes('textToImage')) {
    const ranks: number[] = [];
    const n = Math.min(o.maxQueries ?? texts.length, texts.length);
    for (let c = 0; c < n; c++) {
      let t = performance.now();
      const top = topK(texts[c]!, images, images.length);
      s1.push(performance.now() - t);
      const gt = captionImage[c]!;
      const stage1Rank = top.rows.indexOf(gt) + 1;
      const cand = top.rows.slice(0, o.k1);
      t = performance.now();
      const candidates = await Promise.all(cand.map(async (i, j) => ({ id: ds.images[i]!.id, image: await image(i), stage1Score: top.scores[j]! })));
      const { scores } = await reranker.score({ text: ds.captions[c]!.text }, candidates);
      s2.push(performance.now() - t);
      ranks.push(hybridRank(cand, fuse(top.scores.slice(0, o.k1), scores, o.fusion, o), new Set([gt]), stage1Rank));
      o.onProgress?.('text→image queries', c + 1, n);
    }
    out.textToImage = rankMetrics(ranks);
  }
  if (directions.includes('imageToText')) {
    const ranks: number[] = [];
    const captionsOf = ds.images.map(() => new Set<number>());
    captionImage.forEach((img, c) => captionsOf[img]!.add(c));
    for (let i = 0; i < images.length; i++) {
      const top = topK(images[i]!, texts, texts.length);
      const stage1Rank = top.rows.findIndex((c) => captionsOf[i]!.has(c)) + 1;
      const cand = top.rows.slice(0, o.k1);
      const { scores } = await reranker.score({ image: await image(i) }, cand.map((c, j) => ({ id: `caption:${c}`, text: ds.captions[c]!.text, stage1Score: top.scores[j]! })));
      ranks.push(hybridRank(cand, fuse(top.scores.slice(0, o.k1), scores, o.fusion, o), captionsOf[i]!, stage1Rank));
      o.onProgress?.('image→text queries', i + 1, images.length);
    }
    out.imageToText = rankMetrics(ranks);
  }
  out.latencyMs = { stage1: latencyStats(s1), stage2: latencyStats(s2) };
  return out;
}
