/**
 * The starter cross-encoder behind the CrossEncoder interface: caption tokens attend over an
 * image's 17 projected regions (./cross-scoring.ts, all candidates of a batch at once by
 * ./attention.ts); with several heads, the mean of their scores. Regions come
 * from the index when it stored them (`duo index --reranker`), else from the backbone, cached
 * by id.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadImage, type DecodedImage } from '../../data/image-loader.js';
import { createError } from '../../errors.js';
import { LruCache } from '../../util/lru.js';
import type { ImageInput } from '../encoder.js';
import { contentId, requireFiles, resolveModelSource } from '../model-source.js';
import { guardedBatches, type CrossEncoder, type RerankCandidate, type RerankOptions, type RerankDirection, type RerankQuery, type RerankResult } from '../reranker.js';
import { loadTensors, type Params } from '../tensor-file.js';
import { BackboneRunner, needsMobilenet } from './backbone-runner.js';
import { crossScores, GLOBAL_KINDS, globalDim, globalKindOf, headRegions, regionInputs, StackBuffers, type CrossConfig, type CrossHead, type GlobalKind, type Standardiser } from './cross-scoring.js';
import { Vocabulary } from './vocab.js';

/** cross_vocab.json: the bi-encoder's words plus the word pairs the cross-encoder reads as tokens */
export const CROSS_FILES = ['manifest.json', 'cross_vocab.json', 'backbone.onnx', 'cross_encoder.bin'];

export interface CrossManifest {
  file: string;
  vocabulary: string;
  /** one entry per head, in the order of their tensors (`h0.`, `h1.`, …) in cross_encoder.bin; `global` absent: pooled */
  heads: { dim: number; lambda: number; vocabSize: number; global?: GlobalKind }[];
  /**
   * the weighted-fusion α the engine defaults to with this model: `alpha` for text queries ranking
   * images, `alphaImageToText` (when present, else `alpha`) for image queries ranking captions;
   * `chosen` records how (duo export-cross, duo tune-fusion)
   */
  fusion?: { mode: 'weighted'; alpha: number; alphaImageToText?: number; chosen?: Record<string, unknown> };
}

/** The manifest's fusion α per direction; an older manifest's one α serves both. */
/**
 * The manifest's α per direction. A hand-edited value outside [0, 1] would weigh stage 1
 * negatively (or give NaN scores) without a word, so it is refused naming the field; `file`
 * names the manifest in that error.
 */
export function fusionAlphaOf(fusion: CrossManifest['fusion'], file = 'manifest.json'): Record<RerankDirection, number> | undefined {
  if (!fusion) return undefined;
  const check = (field: string, v: unknown): number => {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 1) throw createError('MODEL_UNSUPPORTED', file, `crossEncoder.fusion.${field} must be a number from 0 to 1, got ${JSON.stringify(v)}`);
    return v;
  };
  const alpha = check('alpha', fusion.alpha);
  return { textToImage: alpha, imageToText: fusion.alphaImageToText === undefined ? alpha : check('alphaImageToText', fusion.alphaImageToText) };
}

export class StarterCrossEncoder implements CrossEncoder {
  /** image sides computed here (an index without stored ones), by id: 34 KiB each with two 256-d heads, so bounded in bytes (256 MiB, some 7,500 images) */
  private readonly cache = new LruCache<string, Float32Array>(50_000, (r) => r.byteLength, 256 << 20);
  /** this instance's stacking buffers for stage 2 (./cross-scoring.ts) */
  private readonly buffers = new StackBuffers();

  private constructor(
    readonly id: string,
    readonly heads: CrossHead[],
    readonly fusionAlpha: Readonly<Record<RerankDirection, number>> | undefined,
    private readonly std: Standardiser,
    private readonly vocab: Vocabulary,
    /** the backbone pass it shares with the starter encoder of the same weights, through the decoded image */
    readonly backbone: BackboneRunner,
  ) {}

  static async load(dir: string): Promise<StarterCrossEncoder> {
    const source = resolveModelSource(dir);
    requireFiles(source, CROSS_FILES);
    const manifest = JSON.parse(await readFile(join(source.location, 'manifest.json'), 'utf8')) as { crossEncoder?: CrossManifest };
    const m = manifest.crossEncoder;
    if (!m?.heads?.length) throw createError('MODEL_UNSUPPORTED', source.location, 'manifest.json has no crossEncoder.heads');
    const vocab = new Vocabulary(JSON.parse(await readFile(join(source.location, 'cross_vocab.json'), 'utf8')) as string[]);
    const t = await loadTensors(join(source.location, 'cross_encoder.bin'));
    const std: Standardiser = { cellMean: t.get('std.cellMean')!, cellStd: t.get('std.cellStd')!, pooledMean: t.get('std.pooledMean')!, pooledStd: t.get('std.pooledStd')! };
    const binFile = join(source.location, 'cross_encoder.bin');
    const widths = GLOBAL_KINDS.map((k) => globalDim({ global: k }));
    if (Object.values(std).some((v) => v === undefined) || !widths.includes(std.pooledMean.length) || std.pooledStd.length !== std.pooledMean.length) {
      throw createError('MODEL_UNSUPPORTED', binFile, `its standardiser (std.cellMean, std.cellStd, std.pooledMean, std.pooledStd) is missing or not ${widths.join(' or ')} global inputs wide`);
    }
    const heads = m.heads.map((h, i) => {
      const params: Params = new Map([...t].filter(([k]) => k.startsWith(`h${i}.`)).map(([k, v]) => [k.slice(`h${i}.`.length), v]));
      const tokens = params.get('tokens');
      if (!tokens || tokens.length !== h.vocabSize * h.dim || h.vocabSize > vocab.size) {
        throw createError('MODEL_UNSUPPORTED', binFile, `head ${i} does not match its manifest entry (${h.vocabSize} tokens × ${h.dim}) or cross_vocab.json (${vocab.size})`);
      }
      if (h.global !== undefined && !GLOBAL_KINDS.includes(h.global)) throw createError('MODEL_UNSUPPORTED', join(source.location, 'manifest.json'), `crossEncoder.heads[${i}].global must be one of ${GLOBAL_KINDS.join(', ')}, got ${JSON.stringify(h.global)}`);
      const config: CrossConfig = { vocabSize: h.vocabSize, dim: h.dim, lambda: h.lambda, ...(h.global ? { global: h.global } : {}) };
      const width = globalDim(config);
      if (params.get('global.W')?.length !== width * h.dim || width > std.pooledMean.length) {
        throw createError('MODEL_UNSUPPORTED', binFile, `head ${i}'s global projection does not read the ${width} inputs of global "${config.global ?? 'pooled'}" (standardiser: ${std.pooledMean.length})`);
      }
      return { config, params };
    });
    const backbone = await BackboneRunner.load(join(source.location, 'backbone.onnx'));
    if (needsMobilenet(globalKindOf(std)) && !backbone.hasMobilenet) {
      await backbone.dispose();
      throw createError('MODEL_UNSUPPORTED', join(source.location, 'backbone.onnx'), 'the cross-encoder reads MobileNetV2 features but this backbone has no MobileNetV2 branch');
    }
    // the id is the weights' content, not manifest.json's: the fusion α (there) is not part of the
    // model's id, on purpose, so re-choosing it (duo tune-fusion) keeps the indexes that recorded
    // this cross-encoder valid
    const id = `${await contentId(source, CROSS_FILES.filter((f) => f !== 'manifest.json'))}:cross`;
    return new StarterCrossEncoder(id, heads, fusionAlphaOf(m.fusion, join(source.location, 'manifest.json')), std, vocab, backbone);
  }

  async regionsOf(images: DecodedImage[], options: { signal?: AbortSignal } = {}): Promise<Float32Array[]> {
    options.signal?.throwIfAborted();
    if (images.length === 0) return [];
    const features = await this.backbone.run(images, options);
    options.signal?.throwIfAborted();
    return headRegions(this.heads, regionInputs(features, this.std));
  }

  private async regionsFor(key: string | undefined, image: ImageInput, signal: AbortSignal | undefined): Promise<Float32Array> {
    const hit = key ? this.cache.get(key) : undefined;
    if (hit) return hit;
    const decoded = typeof image === 'string' || image instanceof Uint8Array ? await loadImage(image) : image;
    const [r] = await this.regionsOf([decoded], { signal });
    if (key) this.cache.set(key, r!);
    return r!;
  }

  /** One query against a batch of candidates: per head a single tokens × regions product (./attention.ts). */
  async score(query: RerankQuery, candidates: RerankCandidate[], options: RerankOptions = {}): Promise<RerankResult> {
    const started = performance.now();
    const { signal } = options;
    signal?.throwIfAborted();
    if ('text' in query) {
      // one query, many candidates: tokenise it once
      const ids = [this.vocab.encode(query.text)];
      const { results, calls, batchSize } = await guardedBatches(candidates, options.batchSize ?? 64, async (batch) => {
        const regions = await Promise.all(
          batch.map(async (c) => {
            if (c.regions) return c.regions;
            if (c.image === undefined) throw createError('BAD_ARGUMENT', `candidate ${c.id}`, 'a text query needs candidates with an image or stored regions');
            return this.regionsFor(c.id, c.image, signal);
          }),
        );
        return Array.from((await crossScores(this.heads, ids, regions, this.buffers)).data);
      }, { signal });
      return { scores: results, ms: performance.now() - started, calls, batchSize };
    }
    const regions = [await this.regionsFor(typeof query.image === 'string' ? `query:${query.image}` : undefined, query.image, signal)];
    const { results, calls, batchSize } = await guardedBatches(candidates, options.batchSize ?? 64, async (batch) => {
      const captions = batch.map((c) => {
        if (c.text === undefined) throw createError('BAD_ARGUMENT', `candidate ${c.id}`, 'an image query needs candidates with a text');
        return this.vocab.encode(c.text);
      });
      return Array.from((await crossScores(this.heads, captions, regions, this.buffers)).data);
    }, { signal });
    return { scores: results, ms: performance.now() - started, calls, batchSize };
  }

  async dispose(): Promise<void> {
    await this.backbone.dispose();
  }
}
