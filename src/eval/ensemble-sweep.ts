/**
 * Chooses an ensemble's weights on evaluation data (`duo eval --model a,b --ensemble-weights
 * 0.3,0.5,0.7`): each member's similarities are standardised by their spread over the split
 * (the standard deviation of its text–image cosines), so a weight means a share of evidence,
 * not of a member's cosine scale; every weight is evaluated through an EnsembleEncoder, the
 * same class `--model a=…,b=…` loads, and the best by rsum is given as that spec.
 * Members encode the split once: a memo in front of each answers the later passes.
 */
import type { DecodedImage } from '../data/image-loader.js';
import type { RetrievalDataset } from '../data/dataset.js';
import { createError } from '../errors.js';
import { dot } from '../index/exact-index.js';
import { EnsembleEncoder, ensembleSpec } from '../models/ensemble-encoder.js';
import { l2normalize, type EncodeOptions, type Encoder, type ImageInput } from '../models/encoder.js';
import type { RankMetrics } from './metrics.js';
import { evaluateRetrieval, rsum } from './retrieval-eval.js';

export interface SweepRow {
  /** weights on standardised similarities, one per member (sum 1) */
  standardised: number[];
  /** the same as weights on raw cosines: what `--model` takes */
  spec: string;
  textToImage: RankMetrics;
  imageToText: RankMetrics;
  rsum: number;
}

export interface SweepResult {
  /** each member's standard deviation of text–image cosines over the split */
  spreads: number[];
  members: { spec: string; id: string; textToImage: RankMetrics; imageToText: RankMetrics; rsum: number }[];
  rows: SweepRow[];
  best: SweepRow;
}

const keyOf = (input: ImageInput) => (typeof input === 'string' ? input : input instanceof Uint8Array ? undefined : (input as DecodedImage).source);

/** An encoder that answers inputs it has seen from memory (keyed by text, or by the image's source path). */
class Memo implements Encoder {
  private readonly texts = new Map<string, Float32Array>();
  private readonly images = new Map<string, Float32Array>();
  constructor(readonly inner: Encoder) {}
  get id() {
    return this.inner.id;
  }
  get dim() {
    return this.inner.dim;
  }
  get normalized() {
    return this.inner.normalized;
  }
  get similarity() {
    return this.inner.similarity;
  }
  get textCoverage() {
    return this.inner.textCoverage?.bind(this.inner);
  }
  async encodeTexts(texts: string[], options?: EncodeOptions): Promise<Float32Array[]> {
    const todo = [...new Set(texts.filter((t) => !this.texts.has(t)))];
    (await this.inner.encodeTexts(todo, options)).forEach((v, i) => this.texts.set(todo[i]!, v));
    return texts.map((t) => this.texts.get(t)!);
  }
  async encodeImages(images: ImageInput[], options?: EncodeOptions): Promise<Float32Array[]> {
    const todo = images.filter((im) => {
      const k = keyOf(im);
      return k === undefined || !this.images.has(k);
    });
    const fresh = new Map((await this.inner.encodeImages(todo, options)).map((v, i) => [todo[i]!, v]));
    for (const [im, v] of fresh) {
      const k = keyOf(im);
      if (k !== undefined) this.images.set(k, v);
    }
    return images.map((im) => fresh.get(im) ?? this.images.get(keyOf(im)!)!);
  }
  dispose(): Promise<void> {
    return Promise.resolve();
  }
}

/** Standard deviation of the cosines between every caption and every image (unit vectors). */
function spread(texts: Float32Array[], images: Float32Array[]): number {
  const dim = images[0]!.length;
  const flat = new Float32Array(images.length * dim);
  const unit = (v: Float32Array) => l2normalize(Float32Array.from(v));
  images.forEach((v, i) => flat.set(unit(v), i * dim));
  let sum = 0;
  let sq = 0;
  let n = 0;
  for (const t of texts) {
    const u = unit(t);
    for (let j = 0; j < images.length; j++) {
      const s = dot(u, flat, j * dim, dim);
      sum += s;
      sq += s * s;
      n++;
    }
  }
  const mean = sum / n;
  return Math.sqrt(Math.max(0, sq / n - mean * mean));
}

/**
 * `weights`: the first member's standardised weight at each step (the others share the rest
 * equally). Members are the caller's: they are not disposed here.
 */
export async function sweepEnsemble(ds: RetrievalDataset, members: { spec: string; encoder: Encoder }[], weights: number[], onProgress?: (done: number, total: number) => void): Promise<SweepResult> {
  if (members.length < 2) throw createError('BAD_ARGUMENT', '--model', 'an ensemble sweep needs two models or more (--model a,b)');
  for (const w of weights) if (!(w > 0 && w < 1)) throw createError('BAD_ARGUMENT', '--ensemble-weights', `each weight is the first model's share, between 0 and 1 (exclusive), got ${w}`);
  const memos = members.map((m) => new Memo(m.encoder));
  const total = members.length + weights.length;
  const alone = [];
  const spreads: number[] = [];
  for (const [i, memo] of memos.entries()) {
    const r = await evaluateRetrieval(ds, memo);
    alone.push({ spec: members[i]!.spec, id: memo.id, textToImage: r.textToImage, imageToText: r.imageToText, rsum: rsum(r) });
    spreads.push(spread(await memo.encodeTexts(ds.captions.map((c) => c.text)), await memo.encodeImages(ds.images.map((im) => im.source))));
    onProgress?.(i + 1, total);
  }
  const rows: SweepRow[] = [];
  for (const [step, w] of weights.entries()) {
    const standardised = members.map((_, i) => (i === 0 ? w : (1 - w) / (members.length - 1)));
    // a standardised weight w on cos/σ is a raw weight w/σ on cos
    const raw = standardised.map((s, i) => s / spreads[i]!);
    const sum = raw.reduce((a, b) => a + b, 0);
    const parts = members.map((m, i) => ({ spec: m.spec, weight: raw[i]! / sum }));
    const ensemble = new EnsembleEncoder(parts.map((p, i) => ({ ...p, encoder: memos[i]! })), false);
    const r = await evaluateRetrieval(ds, ensemble);
    rows.push({ standardised, spec: ensembleSpec(parts), textToImage: r.textToImage, imageToText: r.imageToText, rsum: rsum(r) });
    onProgress?.(members.length + step + 1, total);
  }
  const best = rows.reduce((a, b) => (b.rsum > a.rsum ? b : a));
  return { spreads, members: alone, rows, best };
}
