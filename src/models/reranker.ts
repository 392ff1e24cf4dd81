/**
 * A cross-encoder (stage 2): it sees the query and one candidate together and scores the
 * match. BLIP ITM and the project's starter cross-encoder plug in behind this;
 * test/contracts/reranker.contract.ts holds the contract.
 */
import type { DecodedImage } from '../data/image-loader.js';
import type { ImageInput } from './encoder.js';

export type RerankQuery = { text: string } | { image: ImageInput };

/** What stage 2 ranks: images for a text query, or texts (captions) for an image query. */
export type RerankDirection = 'textToImage' | 'imageToText';

export interface RerankCandidate {
  /** stable id: image-side features are cached under it */
  id: string;
  text?: string;
  image?: ImageInput;
  /** the image side precomputed at index time (a model-specific layout), when the index holds it */
  regions?: Float32Array;
  /** the candidate's stage-1 (bi-encoder) score; models that use it as a feature require it */
  stage1Score?: number;
}

export interface RerankOptions {
  /** pairs per model call (default per model); shrinks by half on an out-of-memory error */
  batchSize?: number;
  /** checked before every model call: once aborted, no further batch runs and score rejects with the signal's reason */
  signal?: AbortSignal;
}

export interface RerankResult {
  /** one score per candidate, in order; higher is a better match */
  scores: number[];
  ms: number;
  /** model calls made, and the batch size that finally worked */
  calls: number;
  batchSize: number;
}

export interface CrossEncoder {
  readonly id: string;
  /**
   * the weighted-fusion α (stage 2's share) this model was chosen with, per direction: the
   * engine's default for it (a model whose stage 2 is weak in one direction wants less of it there)
   */
  readonly fusionAlpha?: Readonly<Record<RerankDirection, number>>;
  /** when defined, the image side this model computes at index time (stored beside the index) */
  regionsOf?(images: DecodedImage[], options?: { signal?: AbortSignal }): Promise<Float32Array[]>;
  score(query: RerankQuery, candidates: RerankCandidate[], options?: RerankOptions): Promise<RerankResult>;
  dispose(): Promise<void>;
}

const OUT_OF_MEMORY = /out of memory|bad_alloc|failed to allocate|allocation|ENOMEM|Array buffer allocation/i;

/**
 * Runs `run` over `items` in batches; when a batch fails for lack of memory, halves the batch
 * size and retries from that batch, down to 1, rather than failing the whole query. Once
 * `signal` is aborted no further batch runs.
 */
export async function guardedBatches<T, R>(
  items: T[],
  batchSize: number,
  run: (batch: T[]) => Promise<R[]>,
  options: { signal?: AbortSignal } = {},
): Promise<{ results: R[]; calls: number; batchSize: number }> {
  const { signal } = options;
  signal?.throwIfAborted();
  let size = Math.max(1, Math.floor(batchSize));
  const results: R[] = [];
  let calls = 0;
  for (let i = 0; i < items.length; ) {
    signal?.throwIfAborted();
    const batch = items.slice(i, i + size);
    try {
      calls++;
      results.push(...(await run(batch)));
      i += batch.length;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (size === 1 || !OUT_OF_MEMORY.test(message)) throw error;
      size = Math.max(1, size >> 1);
    }
  }
  return { results, calls, batchSize: size };
}
