/**
 * The programmatic API in four verbs: rank a list of images for a text, build an image
 * database once, and search it by text or image. Defaults to the shipped starter model; any
 * encoder spec works. Engines come from openEngine, like the CLI's.
 *
 *   const p = await Predictor.open();
 *   const top = await p.rankImages('a dog on a beach', paths, 5);
 *   await p.buildDatabase('photos/', 'photos.duo');
 *   const hits = await p.search('red car', 10);
 */
import { resolve } from 'node:path';
import { createError } from './errors.js';
import { buildIndex, imageIndexInfo, type BuildReport } from './index/build-index.js';
import { ExactStore } from './index/exact-store.js';
import { indexImages } from './index/index-images.js';
import type { Encoder, ImageInput } from './models/encoder.js';
import { defaultModelPath, loadEncoder, type LoadEncoderOptions } from './models/load-encoder.js';
import { SearchEngine, type EngineHit, type Query } from './search/engine.js';
import { openEngine } from './search/open-engine.js';
import type { SearchOptionsInput } from './search/options.js';

export interface RankedImage {
  rank: number;
  image: string;
  score: number;
}

export class Predictor {
  private engine?: SearchEngine;

  private constructor(
    readonly encoder: Encoder,
    readonly modelSpec: string,
  ) {}

  static async open(options: { model?: string } & LoadEncoderOptions = {}): Promise<Predictor> {
    const spec = options.model ?? defaultModelPath();
    return new Predictor(await loadEncoder(spec, options), spec);
  }

  /** Scores every image against the text and returns the best k (nothing is written to disk). */
  async rankImages(text: string, images: string[], k = images.length): Promise<RankedImage[]> {
    const store = ExactStore.memory(await imageIndexInfo({ root: '/', encoder: this.encoder, modelSpec: this.modelSpec }));
    const engine = new SearchEngine({ store, encoder: this.encoder, imageOf: (id) => id }, { cacheBytes: { embeddings: 0, responses: 0 } });
    try {
      const { failed } = await indexImages(store, images.map((path) => ({ id: path, source: path })), { encoder: this.encoder });
      if (failed.length > 0) throw createError('BAD_IMAGE', failed[0]!.id, failed[0]!.error);
      const [response] = await engine.search([{ text }], { k: Math.max(1, Math.min(k, images.length)) });
      return response!.results.map((h) => ({ rank: h.rank, image: h.id, score: h.score }));
    } finally {
      await store.close();
    }
  }

  /** Indexes a folder (resumably) and opens it for `search`. */
  async buildDatabase(imagesDir: string, indexPath: string, onProgress?: (done: number, total: number) => void): Promise<BuildReport> {
    const report = await buildIndex({ root: imagesDir, indexPath, encoder: this.encoder, modelSpec: this.modelSpec, onProgress });
    await this.openDatabase(indexPath);
    return report;
  }

  /** Opens an index built with this predictor's model (another model's index is refused). */
  async openDatabase(indexPath: string): Promise<void> {
    await this.engine?.close();
    this.engine = await openEngine({ index: resolve(indexPath), encoder: this.encoder });
  }

  async search(query: Query | string, k = 10, options: SearchOptionsInput = {}): Promise<EngineHit[]> {
    if (!this.engine) throw createError('BAD_ARGUMENT', 'search', 'no database open: call buildDatabase or openDatabase first');
    const q: Query = typeof query === 'string' ? { text: query } : query;
    const [response] = await this.engine.search([q], { ...options, k });
    return response!.results;
  }

  async searchImage(image: ImageInput, k = 10): Promise<EngineHit[]> {
    return this.search({ image }, k);
  }

  async close(): Promise<void> {
    await this.engine?.close();
    this.engine = undefined;
    await this.encoder.dispose();
  }
}
