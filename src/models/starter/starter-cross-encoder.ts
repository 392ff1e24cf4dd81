/**
 * The starter cross-encoder behind the CrossEncoder interface: caption tokens attend over an
 * image's 17 projected regions (src/train/cross-attention.ts). Regions come from the index
 * when it stored them (`duo index --reranker`), else from the backbone, cached by id.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadImage, type DecodedImage } from '../../data/image-loader.js';
import { createError } from '../../errors.js';
import { LruCache } from '../../util/lru.js';
import { CELLS, projectRegions, regionInputs, tokenVectors, type CrossConfig, type Standardiser } from '../../train/cross-encoder-model.js';
import { pairScore } from '../../train/cross-attention.js';
import type { Params } from '../../train/layers.js';
import { loadTensors } from '../../train/tensor-file.js';
import type { ImageInput } from '../encoder.js';
import { contentId, requireFiles, resolveModelSource } from '../model-source.js';
import { guardedBatches, type CrossEncoder, type RerankCandidate, type RerankOptions, type RerankQuery, type RerankResult } from '../reranker.js';
import { BackboneRunner } from './backbone-runner.js';
import { Vocabulary } from './vocab.js';

export const CROSS_FILES = ['manifest.json', 'vocab.json', 'backbone.onnx', 'cross_encoder.bin'];

export class StarterCrossEncoder implements CrossEncoder {
  private readonly cache = new LruCache<string, Float32Array>(50_000);

  private constructor(
    readonly id: string,
    readonly config: CrossConfig,
    private readonly params: Params,
    private readonly std: Standardiser,
    private readonly vocab: Vocabulary,
    private readonly backbone: BackboneRunner,
  ) {}

  static async load(dir: string): Promise<StarterCrossEncoder> {
    const source = resolveModelSource(dir);
    requireFiles(source, CROSS_FILES);
    const manifest = JSON.parse(await readFile(join(source.location, 'manifest.json'), 'utf8')) as { crossEncoder?: { dim: number; lambda: number } };
    if (!manifest.crossEncoder) throw createError('MODEL_UNSUPPORTED', source.location, 'manifest.json has no crossEncoder section');
    const vocab = new Vocabulary(JSON.parse(await readFile(join(source.location, 'vocab.json'), 'utf8')) as string[]);
    const t = await loadTensors(join(source.location, 'cross_encoder.bin'));
    const std: Standardiser = { cellMean: t.get('std.cellMean')!, cellStd: t.get('std.cellStd')!, pooledMean: t.get('std.pooledMean')!, pooledStd: t.get('std.pooledStd')! };
    const params: Params = new Map([...t].filter(([k]) => !k.startsWith('std.')));
    const config: CrossConfig = { vocabSize: vocab.size, dim: manifest.crossEncoder.dim, lambda: manifest.crossEncoder.lambda };
    const backbone = await BackboneRunner.load(join(source.location, 'backbone.onnx'));
    return new StarterCrossEncoder(`${await contentId(source, CROSS_FILES.filter((f) => f !== 'manifest.json'))}:cross`, config, params, std, vocab, backbone);
  }

  async regionsOf(images: DecodedImage[]): Promise<Float32Array[]> {
    if (images.length === 0) return [];
    return projectRegions(this.params, this.config.dim, regionInputs(await this.backbone.run(images), this.std));
  }

  private async regionsFor(key: string | undefined, image: ImageInput): Promise<Float32Array> {
    const hit = key ? this.cache.get(key) : undefined;
    if (hit) return hit;
    const decoded = typeof image === 'string' || image instanceof Uint8Array ? await loadImage(image) : image;
    const [r] = await this.regionsOf([decoded]);
    if (key) this.cache.set(key, r!);
    return r!;
  }

  /** attention score plus the learned weight times the bi-encoder's cosine of the pair */
  private pair(ids: Int32Array, tokens: Float32Array, regions: Float32Array, c: RerankCandidate): number {
    const attention = pairScore({ tokens, n: ids.length, regions, m: CELLS + 1 }, this.config.dim, this.config.lambda).score;
    const w = this.params.get('bi.w')?.[0] ?? 0;
    if (w === 0) return attention;
    if (c.stage1Score === undefined) throw createError('BAD_ARGUMENT', `candidate ${c.id}`, 'this cross-encoder uses the stage-1 score of each candidate as a feature');
    return attention + w * c.stage1Score;
  }

  async score(query: RerankQuery, candidates: RerankCandidate[], options: RerankOptions = {}): Promise<RerankResult> {
    const started = performance.now();
    if ('text' in query) {
      const ids = this.vocab.encode(query.text);
      // one query, many candidates: look its token vectors up once
      const tokens = tokenVectors(this.params, this.config.dim, ids);
      const { results, calls, batchSize } = await guardedBatches(candidates, options.batchSize ?? 64, async (batch) =>
        Promise.all(
          batch.map(async (c) => {
            if (c.regions) return this.pair(ids, tokens, c.regions, c);
            if (c.image === undefined) throw createError('BAD_ARGUMENT', `candidate ${c.id}`, 'a text query needs candidates with an image or stored regions');
            return this.pair(ids, tokens, await this.regionsFor(c.id, c.image), c);
          }),
        ),
      );
      return { scores: results, ms: performance.now() - started, calls, batchSize };
    }
    const regions = await this.regionsFor(typeof query.image === 'string' ? `query:${query.image}` : undefined, query.image);
    const { results, calls, batchSize } = await guardedBatches(candidates, options.batchSize ?? 64, async (batch) =>
      batch.map((c) => {
        if (c.text === undefined) throw createError('BAD_ARGUMENT', `candidate ${c.id}`, 'an image query needs candidates with a text');
        const ids = this.vocab.encode(c.text);
        return this.pair(ids, tokenVectors(this.params, this.config.dim, ids), regions, c);
      }),
    );
    return { scores: results, ms: performance.now() - started, calls, batchSize };
  }

  async dispose(): Promise<void> {
    await this.backbone.dispose();
  }
}
