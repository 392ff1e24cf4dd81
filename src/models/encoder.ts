import type { DecodedImage } from '../data/image-loader.js';
import type { QueryBank } from './query-bank.js';

/** A path, encoded file bytes, or an image already decoded by `loadImage`. */
export type ImageInput = string | Uint8Array | DecodedImage;

export interface EncodeOptions {
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
  /** checked before every model call: once aborted, no further batch runs and the call rejects with the signal's reason */
  signal?: AbortSignal;
}

/**
 * A bi-encoder: texts and images into one vector space. Every model family (CLIP, SigLIP,
 * the project's starter model) plugs in behind this; test/contracts/encoder.contract.ts
 * holds the contract each one passes.
 */
export interface Encoder {
  /** Identifies the weights: an index built with one id refuses queries from another. */
  readonly id: string;
  readonly dim: number;
  /** whether every returned vector has unit L2 norm */
  readonly normalized: boolean;
  /** how the model turns a cosine into a score: CLIP's softmax logits or SigLIP's sigmoid */
  readonly similarity: Similarity;
  encodeTexts(texts: string[], options?: EncodeOptions): Promise<Float32Array[]>;
  encodeImages(images: ImageInput[], options?: EncodeOptions): Promise<Float32Array[]>;
  /**
   * Models with a closed vocabulary (the starter pack's words): the words of `text` as
   * encodeTexts reads them, split into those the model knows and those it drops, so a caller
   * can refuse a query none of whose words it knows (it would embed to a vector that means
   * nothing). Open vocabularies (CLIP's byte-level BPE) leave it undefined.
   */
  textCoverage?(text: string): TextCoverage;
  /**
   * A bank of typical queries for hubness correction (query-bank.ts): items are indexed with their
   * hubness against it and cross-modal searches subtract λ times it. Models without one leave it
   * undefined and rank by plain cosine.
   */
  readonly queryBank?: QueryBank;
  dispose(): Promise<void>;
}

/** Distinct words in the order they first appear. */
export interface TextCoverage {
  known: string[];
  unknown: string[];
}

export type Similarity =
  | { kind: 'cosine' }
  /** p(match) = sigmoid(logitScale · cos + logitBias); unknown scale/bias leaves ranking by cosine */
  | { kind: 'sigmoid'; logitScale?: number; logitBias?: number };

export function l2normalize(v: Float32Array): Float32Array {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  const n = Math.sqrt(s);
  if (n === 0 || !Number.isFinite(n)) return v;
  for (let i = 0; i < v.length; i++) v[i]! /= n;
  return v;
}

/** Splits `items` into batches, reports progress after each, and runs none once `signal` is aborted. */
export async function inBatches<T, R>(
  items: T[],
  batchSize: number,
  run: (batch: T[]) => Promise<R[]>,
  options: Pick<EncodeOptions, 'onProgress' | 'signal'> = {},
): Promise<R[]> {
  const { onProgress, signal } = options;
  signal?.throwIfAborted();
  const out: R[] = [];
  for (let i = 0; i < items.length; i += batchSize) {
    signal?.throwIfAborted();
    out.push(...(await run(items.slice(i, i + batchSize))));
    onProgress?.(Math.min(i + batchSize, items.length), items.length);
  }
  return out;
}
