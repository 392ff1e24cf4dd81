/**
 * The standard bidirectional protocol on one split: text→image ranks each caption's own
 * image among all the split's images; image→text ranks all the split's captions for each
 * image and takes the best-ranked of its own (five, in Flickr).
 */
import type { RetrievalDataset } from '../data/dataset.js';
import { dot } from '../index/exact-index.js';
import type { Encoder } from '../models/encoder.js';
import { firstRelevantRank, rankMetrics, type RankMetrics } from './metrics.js';

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
}

function stack(rows: Float32Array[], dim: number): Float32Array {
  const m = new Float32Array(rows.length * dim);
  rows.forEach((r, i) => m.set(r, i * dim));
  return m;
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
  const encodeTexts = (performance.now() - t) / 1000;

  t = performance.now();
  const dim = encoder.dim;
  const imageIndex = new Map(ds.images.map((img, i) => [img.id, i]));
  const captionImage = ds.captions.map((c) => imageIndex.get(c.imageId)!);
  const captionsOf: number[][] = ds.images.map(() => []);
  captionImage.forEach((img, c) => captionsOf[img]!.push(c));

  const t2i: number[] = [];
  scoreRows(textVectors, stack(imageVectors, dim), ds.images.length, dim, (c, scores) =>
    t2i.push(firstRelevantRank(scores, [captionImage[c]!])),
  );
  const i2t: number[] = [];
  scoreRows(imageVectors, stack(textVectors, dim), ds.captions.length, dim, (i, scores) =>
    i2t.push(firstRelevantRank(scores, captionsOf[i]!)),
  );
  return {
    dataset: ds.name,
    split: ds.split,
    model: encoder.id,
    images: ds.images.length,
    captions: ds.captions.length,
    textToImage: rankMetrics(t2i),
    imageToText: rankMetrics(i2t),
    seconds: { encodeImages, encodeTexts, score: (performance.now() - t) / 1000 },
  };
}
