/**
 * The programmatic API: rank a list of images for a text, build an image database once, and
 * search it by text or image. Defaults to the shipped starter model; any encoder spec works.
 *
 *   const p = await Predictor.open();
 *   const top = await p.rankImages('a dog on a beach', paths, 5);
 *   await p.buildDatabase('photos/', 'photos.duo');
 *   const hits = await p.search({ text: 'red car' }, 10);
 */
import { ExactIndex } from './index/exact-index.js';
import { buildIndex, type BuildReport } from './index/build-index.js';
import type { Encoder, ImageInput } from './models/encoder.js';
import { defaultModelPath, loadEncoder, type LoadEncoderOptions } from './models/load-encoder.js';
import { SearchEngine, type EngineHit, type Query, type SearchOptions } from './search/engine.js';

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

  /** Scores every image against the text and returns the best k (no index is written). */
  async rankImages(text: string, images: string[], k = images.length): Promise<RankedImage[]> {
    const store = new ExactIndex(this.encoder.dim);
    store.upsert(images, await this.encoder.encodeImages(images));
    const [query] = await this.encoder.encodeTexts([text]);
    const [hits] = await store.search([query!], k);
    return hits!.map((h, i) => ({ rank: i + 1, image: h.id, score: h.score }));
  }

  /** Indexes a folder (resumably) and opens it for `search`. */
  async buildDatabase(imagesDir: string, indexPath: string, onProgress?: (done: number, total: number) => void): Promise<BuildReport> {
    const report = await buildIndex({ root: imagesDir, indexPath, encoder: this.encoder, modelSpec: this.modelSpec, onProgress });
    await this.openDatabase(indexPath);
    return report;
  }

  async openDatabase(indexPath: string): Promise<void> {
    this.engine = await SearchEngine.open(indexPath, { encoder: this.encoder });
  }

  async search(query: Query | string, k = 10, options: Partial<SearchOptions> = {}): Promise<EngineHit[]> {
    if (!this.engine) throw new Error('no database open: call buildDatabase or openDatabase first');
    const q: Query = typeof query === 'string' ? { text: query } : query;
    const [response] = await this.engine.search([q], { ...options, k2: k });
    return response!.results;
  }

  async searchImage(image: ImageInput, k = 10): Promise<EngineHit[]> {
    return this.search({ image }, k);
  }

  async close(): Promise<void> {
    await this.encoder.dispose();
  }
}
