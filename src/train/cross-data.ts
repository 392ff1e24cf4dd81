/**
 * What training and choosing the starter cross-encoder read: backbone features of train and
 * dev, the starter bi-encoder's hard negatives (for every train caption its top wrong images;
 * for every train image, when asked, its top wrong captions), its top k1 for every dev caption
 * and every dev image, and batches built around those hard negatives.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readFlickr8k } from '../data/readers/flickr8k.js';
import { TopK } from '../index/top-k.js';
import { mat, matmul } from '../models/mat.js';
import type { BackboneFeatures } from '../models/starter/backbone-runner.js';
import { StarterEncoder } from '../models/starter/starter-encoder.js';
import { Vocabulary } from '../models/starter/vocab.js';
import { resolveModelSource } from '../models/model-source.js';
import type { RerankDirection } from '../models/reranker.js';
import { shuffle } from './schedule.js';
import { ensureBackbone, splitFeatures } from './starter-features.js';

/** Which ranking a hard negative is mined for: a caption's images (text→image) or an image's captions (image→text): stage 2's two directions. */
export type HardDirection = RerankDirection;
export const HARD_DIRECTIONS: readonly HardDirection[] = ['textToImage', 'imageToText'];

export interface PrepareOptions {
  data: string;
  pack: string;
  cacheDir: string;
  evalK1: number;
}

const rows = (v: Float32Array[], d: number) => {
  const out = new Float32Array(v.length * d);
  v.forEach((x, i) => out.set(x, i * d));
  return out;
};

/** For each query row, the top k corpus rows by inner product (exclusions skipped), via Gemm in chunks. */
async function topRows(q: Float32Array, nq: number, c: Float32Array, nc: number, d: number, k: number, exclude?: (qi: number, ci: number) => boolean) {
  const out: { rows: number[]; scores: number[] }[] = [];
  for (let s = 0; s < nq; s += 512) {
    const n = Math.min(512, nq - s);
    const sims = await matmul(mat(n, d, q.subarray(s * d, (s + n) * d)), mat(nc, d, c), false, true);
    for (let i = 0; i < n; i++) {
      const heap = new TopK(k);
      for (let j = 0; j < nc; j++) if (!exclude?.(s + i, j)) heap.push(sims.data[i * nc + j]!, j);
      const sorted = heap.sorted();
      out.push({ rows: sorted.map((x) => x.row), scores: sorted.map((x) => x.score) });
    }
  }
  return out;
}

export interface Prepared {
  train: {
    feats: BackboneFeatures[];
    ids: Int32Array[];
    captionImage: number[];
    /** per train caption: the bi-encoder's top wrong images for it (text→image hard negatives) */
    hard: Int32Array[];
    /** per train image: the bi-encoder's top wrong captions for it (image→text hard negatives), mined only when asked */
    hardCaptions?: Int32Array[];
  };
  dev: {
    feats: BackboneFeatures[];
    /** every dev caption with the bi-encoder's top k1 dev images and their scores */
    queries: { ids: Int32Array; gt: number; candidates: number[]; stage1: number[] }[];
    /** every dev caption's token ids, what imageQueries' candidates index */
    captionIds: Int32Array[];
    /** every dev image with the bi-encoder's top k1 dev captions (indexes into captionIds) and their scores; gt: its captions */
    imageQueries: { image: number; gt: number[]; candidates: number[]; stage1: number[] }[];
  };
  vocab: Vocabulary;
  /** the id of the bi-encoder that mined the hard negatives and chose dev's candidates */
  biEncoderId: string;
}

/** One split through the pack's bi-encoder: backbone features, embeddings and token ids. */
async function stage1Split(opts: PrepareOptions, bi: StarterEncoder, vocab: Vocabulary, split: string) {
  const backbone = join(resolveModelSource(opts.pack).location, 'backbone.onnx');
  await ensureBackbone(backbone, opts.cacheDir);
  const ds = await readFlickr8k(opts.data, split);
  const feats = await splitFeatures(ds, backbone, opts.cacheDir);
  const index = new Map(ds.images.map((img, i) => [img.id, i]));
  const captionImage = ds.captions.map((c) => index.get(c.imageId)!);
  const imageEmb = await bi.embedFeatures(feats);
  const textEmb = await bi.encodeTexts(ds.captions.map((c) => c.text));
  return { ds, feats, captionImage, imageEmb, textEmb, ids: ds.captions.map((c) => vocab.encode(c.text)) };
}

async function devQueries(opts: PrepareOptions, bi: StarterEncoder, vocab: Vocabulary): Promise<Prepared['dev']> {
  const dev = await stage1Split(opts, bi, vocab, 'dev');
  const d = bi.dim;
  const texts = rows(dev.textEmb, d);
  const images = rows(dev.imageEmb, d);
  const top = await topRows(texts, dev.textEmb.length, images, dev.imageEmb.length, d, opts.evalK1);
  const topCaptions = await topRows(images, dev.imageEmb.length, texts, dev.textEmb.length, d, opts.evalK1);
  const captionsOf: number[][] = dev.feats.map(() => []);
  dev.captionImage.forEach((img, c) => captionsOf[img]!.push(c));
  return {
    feats: dev.feats,
    queries: dev.ids.map((ids, c) => ({ ids, gt: dev.captionImage[c]!, candidates: top[c]!.rows, stage1: top[c]!.scores })),
    captionIds: dev.ids,
    imageQueries: captionsOf.map((gt, image) => ({ image, gt, candidates: topCaptions[image]!.rows, stage1: topCaptions[image]!.scores })),
  };
}

/** Dev queries with the bi-encoder's top k1, tokenised with `vocab`: what a cross-encoder is chosen on. */
export async function prepareDev(opts: PrepareOptions, vocab: Vocabulary): Promise<Prepared['dev']> {
  const bi = await StarterEncoder.load(resolveModelSource(opts.pack));
  try {
    return await devQueries(opts, bi, vocab);
  } finally {
    await bi.dispose();
  }
}

export async function prepare(opts: PrepareOptions & { hardPool: number; pairMinCount: number; hardDirections?: readonly HardDirection[]; onLog?: (line: string) => void }): Promise<Prepared> {
  const log = opts.onLog ?? (() => {});
  const pack = resolveModelSource(opts.pack).location;
  const bi = await StarterEncoder.load(resolveModelSource(pack));
  try {
    const words = new Vocabulary(JSON.parse(readFileSync(join(pack, 'vocab.json'), 'utf8')) as string[]);
    // the pairs come from train captions alone, like the words
    const vocab = opts.pairMinCount > 0 ? words.withPairs((await readFlickr8k(opts.data, 'train')).captions.map((c) => c.text), opts.pairMinCount) : words;
    const train = await stage1Split(opts, bi, vocab, 'train');
    const dev = await devQueries(opts, bi, vocab);
    const d = bi.dim;
    log(`mining ${opts.hardPool} hard negatives for ${train.ds.captions.length} train captions with ${bi.id}`);
    const texts = rows(train.textEmb, d);
    const images = rows(train.imageEmb, d);
    const hard = await topRows(texts, train.textEmb.length, images, train.imageEmb.length, d, opts.hardPool, (qi, ci) => train.captionImage[qi] === ci);
    let hardCaptions: Int32Array[] | undefined;
    if (opts.hardDirections?.includes('imageToText')) {
      log(`mining ${opts.hardPool} hard negative captions for ${train.feats.length} train images with ${bi.id}`);
      const top = await topRows(images, train.imageEmb.length, texts, train.textEmb.length, d, opts.hardPool, (qi, ci) => train.captionImage[ci] === qi);
      hardCaptions = top.map((h) => Int32Array.from(h.rows));
    }
    return { vocab, biEncoderId: bi.id, train: { feats: train.feats, ids: train.ids, captionImage: train.captionImage, hard: hard.map((h) => Int32Array.from(h.rows)), ...(hardCaptions ? { hardCaptions } : {}) }, dev };
  } finally {
    await bi.dispose();
  }
}

/** One image of a batch, and the caption it is trained with when that is fixed (else one of its captions at random). */
export interface BatchItem {
  image: number;
  caption?: number;
}

/**
 * Batches of distinct images: random seeds, and with probability `hard` beside a seed one hard
 * negative of it, so in-batch negatives include the near misses stage 2 exists to sort out
 * (ALBEF/BLIP mine theirs from the contrastive scores). With `textToImage`, one of the
 * bi-encoder's top wrong images for one of the seed's captions; with `imageToText`, the image of
 * one of its top wrong captions for the seed image, trained with that caption (so the seed's
 * image→text row holds it); with both, either at even odds. With `textToImage` alone the draws
 * are those of the batches before `imageToText` existed.
 */
export function hardBatches(train: Prepared['train'], captionsOf: number[][], batchSize: number, hard: number, rand: () => number, directions: readonly HardDirection[] = ['textToImage']): BatchItem[][] {
  if (directions.length === 0) throw new Error('hardBatches: no hard-negative direction');
  if (directions.includes('imageToText') && !train.hardCaptions) throw new Error('hardBatches: imageToText hard negatives were not mined (prepare with hardDirections)');
  const order = shuffle(train.feats.length, rand);
  const batches: BatchItem[][] = [];
  let batch: BatchItem[] = [];
  let inBatch = new Set<number>();
  const add = (item: BatchItem) => {
    batch.push(item);
    inBatch.add(item.image);
    if (batch.length === batchSize) {
      batches.push(batch);
      batch = [];
      inBatch = new Set();
    }
  };
  for (const seed of order) {
    if (inBatch.has(seed)) continue;
    add({ image: seed });
    if (batch.length === 0 || rand() >= hard) continue;
    const direction = directions.length === 1 ? directions[0]! : directions[Math.floor(rand() * directions.length)]!;
    if (direction === 'textToImage') {
      const caps = captionsOf[seed]!;
      const pool = train.hard[caps[Math.floor(rand() * caps.length)]!]!;
      const free = Array.from(pool).filter((i) => !inBatch.has(i));
      if (free.length > 0) add({ image: free[Math.floor(rand() * free.length)]! });
    } else {
      const free = Array.from(train.hardCaptions![seed]!).filter((c) => !inBatch.has(train.captionImage[c]!));
      if (free.length > 0) {
        const caption = free[Math.floor(rand() * free.length)]!;
        add({ image: train.captionImage[caption]!, caption });
      }
    }
  }
  if (batch.length >= 2) batches.push(batch);
  return batches;
}
