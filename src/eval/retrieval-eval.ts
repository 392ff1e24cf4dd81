/**
 * The standard bidirectional protocol on one split: text→image ranks each caption's own
 * image among all the split's images; image→text ranks all the split's captions for each
 * image and takes the best-ranked of its own (five, in Flickr).
 */
import type { RetrievalDataset } from '../data/dataset.js';
import { dot } from '../index/exact-index.js';
import type { EncodeOptions, Encoder } from '../models/encoder.js';
import { correctedRow, hubnessOf, HUBNESS_POOL } from '../models/query-bank.js';
import { stackRows } from '../models/mat.js';
import { recallIntervals } from './bootstrap.js';
import { firstRelevantRank, rankMetrics, recallSum, type RankMetrics } from './metrics.js';

export interface RetrievalEvalResult {
  dataset: string;
  split: string;
  model: string;
  images: number;
  captions: number;
  textToImage: RankMetrics;
  imageToText: RankMetrics;
  seconds: { encodeImages: number; encodeTexts: number; score: number };
}

export interface EvalOptions {
  onProgress?: (stage: 'images' | 'texts', done: number, total: number) => void;
  batchSize?: number;
  /**
   * how captions become text→image queries (default: their embeddings as indexed); `--expand`
   * passes the engine's expansion (search/query-expansion.ts). Image→text ranks the captions as
   * indexed, unexpanded: there they are the collection, not queries.
   */
  embedQueries?: (texts: string[], options: EncodeOptions) => Promise<Float32Array[]>;
}

/** scores[i] = a_i · B for every row of `a`, handed to `visit` one row at a time (no n×m matrix). */
function scoreRows(a: Float32Array[], b: Float32Array, count: number, dim: number, visit: (i: number, scores: Float32Array) => void): void {
  const scores = new Float32Array(count);
  a.forEach((q, i) => {
    for (let j = 0; j < count; j++) scores[j] = dot(q, b, j * dim, dim);
    visit(i, scores);
  });
}

export async function evaluateRetrieval(ds: RetrievalDataset, encoder: Encoder, options: EvalOptions = {}): Promise<RetrievalEvalResult> {
  let t = performance.now();
  const imageVectors = await encoder.encodeImages(ds.images.map((i) => i.source), {
    batchSize: options.batchSize,
    onProgress: (d, n) => options.onProgress?.('images', d, n),
  });
  const encodeImages = (performance.now() - t) / 1000;
  t = performance.now();
  const textVectors = await encoder.encodeTexts(ds.captions.map((c) => c.text), {
    onProgress: (d, n) => options.onProgress?.('texts', d, n),
  });
  const queryVectors = options.embedQueries ? await options.embedQueries(ds.captions.map((c) => c.text), { onProgress: (d, n) => options.onProgress?.('texts', d, n) }) : undefined;
  const encodeTexts = (performance.now() - t) / 1000;

  t = performance.now();
  const imageIndex = new Map(ds.images.map((img, i) => [img.id, i]));
  // with a query bank, each item's hubness as indexing stores it, subtracted within the store's top HUBNESS_POOL as the engine does (query-bank.ts)
  const bank = encoder.queryBank;
  const hubness = bank && bank.lambda > 0
    ? { lambda: bank.lambda, pool: HUBNESS_POOL, images: hubnessOf(imageVectors, bank.texts, encoder.dim, bank.beta), captions: hubnessOf(textVectors, bank.images, encoder.dim, bank.beta) }
    : undefined;
  const captionImage = ds.captions.map((c) => imageIndex.get(c.imageId)!);
  const { textToImage, imageToText, ranks } = evaluateEmbeddings(imageVectors, textVectors, captionImage, queryVectors, hubness);
  // an image and its captions are one unit of the resampling: text→image queries by their image, image→text by themselves
  return {
    dataset: ds.name,
    split: ds.split,
    model: encoder.id,
    images: ds.images.length,
    captions: ds.captions.length,
    textToImage: { ...textToImage, interval95: recallIntervals(ranks.textToImage, captionImage) },
    imageToText: { ...imageToText, interval95: recallIntervals(ranks.imageToText, imageVectors.map((_, i) => i)) },
    seconds: { encodeImages, encodeTexts, score: (performance.now() - t) / 1000 },
  };
}

/**
 * Both directions' metrics (and each query's first-relevant rank) from embeddings; captionImage[c] is the row of caption c's image; queryVectors (default: textVectors) are the captions as text→image queries.
 * `hubness`: each image's and caption's hubness, subtracted λ times from the cross-modal scores of each query's top `pool` by cosine, which then come first (query-bank.ts correctedRow: the engine's order).
 */
export function evaluateEmbeddings(
  imageVectors: Float32Array[],
  textVectors: Float32Array[],
  captionImage: number[],
  queryVectors: Float32Array[] = textVectors,
  hubness?: { images: number[]; captions: number[]; lambda: number; pool: number },
): { textToImage: RankMetrics; imageToText: RankMetrics; ranks: { textToImage: number[]; imageToText: number[] } } {
  const dim = imageVectors[0]?.length ?? 0;
  const captionsOf: number[][] = imageVectors.map(() => []);
  captionImage.forEach((img, c) => captionsOf[img]!.push(c));
  const corrected = (scores: Float32Array, hub: number[] | undefined) => (hub ? correctedRow(scores, hub, hubness!.lambda, hubness!.pool) : scores);
  const t2i: number[] = [];
  scoreRows(queryVectors, stackRows(imageVectors, dim), imageVectors.length, dim, (c, scores) =>
    t2i.push(firstRelevantRank(corrected(scores, hubness?.images), [captionImage[c]!])),
  );
  const i2t: number[] = [];
  scoreRows(imageVectors, stackRows(textVectors, dim), textVectors.length, dim, (i, scores) =>
    i2t.push(firstRelevantRank(corrected(scores, hubness?.captions), captionsOf[i]!)),
  );
  return { textToImage: rankMetrics(t2i), imageToText: rankMetrics(i2t), ranks: { textToImage: t2i, imageToText: i2t } };
}

/** R@1+R@5+R@10 of both directions: the usual model-selection score. */
export function rsum(m: { textToImage: RankMetrics; imageToText: RankMetrics }): number {
  return recallSum(m.textToImage) + recallSum(m.imageToText);
}
