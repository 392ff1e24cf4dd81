/**
 * The starter cross-encoder behind the CrossEncoder interface: caption tokens attend over an
 * image's 17 projected regions (src/train/cross-attention.ts, all candidates of a batch at once
 * by src/train/batched-attention.ts). Regions come from the index
 * when it stored them (`duo index --reranker`), else from the backbone, cached by id.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadImage, type DecodedImage } from '../../data/image-loader.js';
import { createError } from '../../errors.js';
import { LruCache } from '../../util/lru.js';
import { attentionScores } from '../../train/batched-attention.js';
import { projectRegions, regionInputs, REGIONS, unitTokens, type CrossConfig, type Standardiser } from '../../train/cross-encoder-model.js';
import { mat } from '../../train/matmul.js';
import type { Params } from '../../train/layers.js';
import { loadTensors } from '../../train/tensor-file.js';
import type { ImageInput } from '../encoder.js';
import { contentId, requireFiles, resolveModelSource } from '../model-source.js';
import { guardedBatches, type CrossEncoder, type RerankCandidate, type RerankOptions, type RerankQuery, type RerankResult } from '../reranker.js';
import { BackboneRunner } from './backbone-runner.js';
import { Vocabulary } from './vocab.js';

/** cross_vocab.json: the bi-encoder's words plus the word pairs the cross-encoder reads as tokens */
export const CROSS_FILES = ['manifest.json', 'cross_vocab.json', 'backbone.onnx', 'cross_encoder.bin'];

export class StarterCrossEncoder implements CrossEncoder {
  private readonly cache = new LruCache<string, Float32Array>(50_000);

  private constructor(
    readonly id: string,
    readonly config: CrossConfig,
    readonly fusionAlpha: number | undefined,
    private readonly params: Params,
    private readonly std: Standardiser,
    private readonly vocab: Vocabulary,
    private readonly backbone: BackboneRunner,
  ) {}

  static async load(dir: string): Promise<StarterCrossEncoder> {
    const source = resolveModelSource(dir);
    requireFiles(source, CROSS_FILES);
    const manifest = JSON.parse(await readFile(join(source.location, 'manifest.json'), 'utf8')) as { crossEncoder?: { dim: number; lambda: number; fusion?: { alpha: number } } };
    if (!manifest.crossEncoder) throw createError('MODEL_UNSUPPORTED', source.location, 'manifest.json has no crossEncoder section');
    const vocab = new Vocabulary(JSON.parse(await readFile(join(source.location, 'cross_vocab.json'), 'utf8')) as string[]);
    const t = await loadTensors(join(source.location, 'cross_encoder.bin'));
    const std: Standardiser = { cellMean: t.get('std.cellMean')!, cellStd: t.get('std.cellStd')!, pooledMean: t.get('std.pooledMean')!, pooledStd: t.get('std.pooledStd')! };
    const params: Params = new Map([...t].filter(([k]) => !k.startsWith('std.')));
    const config: CrossConfig = { vocabSize: vocab.size, dim: manifest.crossEncoder.dim, lambda: manifest.crossEncoder.lambda };
    const backbone = await BackboneRunner.load(join(source.location, 'backbone.onnx'));
    return new StarterCrossEncoder(`${await contentId(source, CROSS_FILES.filter((f) => f !== 'manifest.json'))}:cross`, config, manifest.crossEncoder.fusion?.alpha, params, std, vocab, backbone);
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

  /** One query against a batch of candidates: a single tokens × regions product (src/train/batched-attention.ts). */
  async score(query: RerankQuery, candidates: RerankCandidate[], options: RerankOptions = {}): Promise<RerankResult> {
    const started = performance.now();
    const { dim, lambda } = this.config;
    if ('text' in query) {
      // one query, many candidates: look its token vectors up once
      const tokens = unitTokens(this.params, dim, [this.vocab.encode(query.text)]);
      const { results, calls, batchSize } = await guardedBatches(candidates, options.batchSize ?? 64, async (batch) => {
        const regions = await Promise.all(
          batch.map(async (c) => {
            if (c.regions) return c.regions;
            if (c.image === undefined) throw createError('BAD_ARGUMENT', `candidate ${c.id}`, 'a text query needs candidates with an image or stored regions');
            return this.regionsFor(c.id, c.image);
          }),
        );
        const R = mat(batch.length * REGIONS, dim);
        regions.forEach((r, i) => R.data.set(r, i * REGIONS * dim));
        return Array.from((await attentionScores(tokens, R, REGIONS, lambda)).S.data);
      });
      return { scores: results, ms: performance.now() - started, calls, batchSize };
    }
    const R = mat(REGIONS, dim, await this.regionsFor(typeof query.image === 'string' ? `query:${query.image}` : undefined, query.image));
    const { results, calls, batchSize } = await guardedBatches(candidates, options.batchSize ?? 64, async (batch) => {
      const captions = batch.map((c) => {
        if (c.text === undefined) throw createError('BAD_ARGUMENT', `candidate ${c.id}`, 'an image query needs candidates with a text');
        return this.vocab.encode(c.text);
      });
      return Array.from((await attentionScores(unitTokens(this.params, dim, captions), R, REGIONS, lambda)).S.data);
    });
    return { scores: results, ms: performance.now() - started, calls, batchSize };
  }

  async dispose(): Promise<void> {
    await this.backbone.dispose();
  }
}
