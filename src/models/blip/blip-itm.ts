/**
 * BLIP image-text matching on onnxruntime-node, reading the files that
 * src/models/blip/export_blip_itm.py writes for a Hugging Face BLIP ITM checkpoint (e.g.
 * Salesforce/blip-itm-base-coco). BERT WordPiece tokenisation and 384 px preprocessing go
 * through transformers.js's tokenizer and image-processor classes. The vision pass is the
 * expensive half, so image embeddings are cached by candidate id: once indexed images are
 * warm, a query pays only the text-side passes.
 * Score = ITM log-odds (logit[match] − logit[no match]) + itcWeight · ITC cosine (LAVIS adds the two).
 */
import { AutoTokenizer, ImageProcessor, RawImage, type PreTrainedTokenizer, type Tensor } from '@huggingface/transformers';
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { loadImage } from '../../data/image-loader.js';
import { createError } from '../../errors.js';
import { LruCache } from '../../util/lru.js';
import type { ImageInput } from '../encoder.js';
import { contentId, requireFiles, resolveModelSource } from '../model-source.js';
import { guardedBatches, type CrossEncoder, type RerankCandidate, type RerankOptions, type RerankQuery, type RerankResult } from '../reranker.js';
import { sessionOptions } from '../../util/ort-session.js';

export const BLIP_REQUIRED_FILES = ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'preprocessor_config.json', 'onnx/vision_model.onnx', 'onnx/text_itm.onnx'];

interface ImageSide {
  embeds: Float32Array; // patches × hidden
  patches: number;
  hidden: number;
  feat?: Float32Array; // ITC vector
}

export interface BlipOptions {
  /** weight of the ITC cosine added to the ITM log-odds (0: ITM only) */
  itcWeight?: number;
  batchSize?: number;
  /** bytes of image embeddings kept in memory (BLIP base: 1.7 MB an image) */
  cacheBytes?: number;
}

export class BlipItmReranker implements CrossEncoder {
  private readonly cache: LruCache<string, ImageSide>;

  private constructor(
    readonly id: string,
    private readonly tokenizer: PreTrainedTokenizer,
    private readonly processor: ImageProcessor,
    private readonly vision: ort.InferenceSession,
    private readonly itm: ort.InferenceSession,
    private readonly itc: ort.InferenceSession | undefined,
    private readonly options: BlipOptions,
  ) {
    this.cache = new LruCache(100_000, (s) => s.embeds.byteLength, options.cacheBytes ?? 512 * 2 ** 20);
  }

  static async load(dir: string, options: BlipOptions = {}): Promise<BlipItmReranker> {
    const source = resolveModelSource(dir);
    requireFiles(source, BLIP_REQUIRED_FILES);
    const tokenizer = await AutoTokenizer.from_pretrained(source.location, { local_files_only: true });
    const config = JSON.parse(await readFile(join(source.location, 'preprocessor_config.json'), 'utf8')) as ConstructorParameters<typeof ImageProcessor>[0];
    const processor = new ImageProcessor(config);
    const opts = sessionOptions();
    const itcPath = join(source.location, 'onnx', 'text_itc.onnx');
    if ((options.itcWeight ?? 0) > 0 && !existsSync(itcPath)) throw createError('MODEL_NOT_FOUND', source.location, 'onnx/text_itc.onnx (needed for itcWeight > 0)');
    const [vision, itm, itc] = await Promise.all([
      ort.InferenceSession.create(join(source.location, 'onnx', 'vision_model.onnx'), opts),
      ort.InferenceSession.create(join(source.location, 'onnx', 'text_itm.onnx'), opts),
      (options.itcWeight ?? 0) > 0 ? ort.InferenceSession.create(itcPath, opts) : Promise.resolve(undefined),
    ]);
    return new BlipItmReranker(await contentId(source, BLIP_REQUIRED_FILES), tokenizer, processor, vision, itm, itc, options);
  }

  get cacheStats(): { entries: number; hits: number; misses: number } {
    return { entries: this.cache.size, hits: this.cache.hits, misses: this.cache.misses };
  }

  /** Computes (and caches) the image side of candidates ahead of queries, e.g. at index time. */
  async warm(images: { id: string; image: ImageInput }[], batchSize = 8): Promise<void> {
    const todo = images.filter((i) => this.cache.get(i.id) === undefined);
    for (let i = 0; i < todo.length; i += batchSize) {
      const batch = todo.slice(i, i + batchSize);
      const sides = await this.imageSides(batch.map((b) => b.image));
      batch.forEach((b, j) => this.cache.set(b.id, sides[j]!));
    }
  }

  private async imageSides(images: ImageInput[], signal?: AbortSignal): Promise<ImageSide[]> {
    const decoded = await Promise.all(images.map((img) => (typeof img === 'string' || img instanceof Uint8Array ? loadImage(img) : img)));
    const { pixel_values } = (await this.processor(decoded.map((d) => new RawImage(d.data, d.width, d.height, 3)))) as { pixel_values: Tensor };
    signal?.throwIfAborted();
    const out = await this.vision.run({ pixel_values: new ort.Tensor('float32', pixel_values.data as Float32Array, pixel_values.dims) });
    const embeds = out.image_embeds;
    if (!embeds || embeds.dims.length !== 3) throw createError('MODEL_OUTPUT', this.id, 'vision_model.onnx must output image_embeds [batch, patches, hidden]');
    const [, patches, hidden] = embeds.dims as [number, number, number];
    const data = embeds.data as Float32Array;
    const feat = out.image_feat?.data as Float32Array | undefined;
    const d = feat ? feat.length / images.length : 0;
    return images.map((_, i) => ({
      embeds: data.slice(i * patches * hidden, (i + 1) * patches * hidden),
      patches,
      hidden,
      feat: feat?.slice(i * d, (i + 1) * d),
    }));
  }

  private async sideOf(key: string, image: ImageInput, signal?: AbortSignal): Promise<ImageSide> {
    const hit = this.cache.get(key);
    if (hit) return hit;
    const [side] = await this.imageSides([image], signal);
    this.cache.set(key, side!);
    return side!;
  }

  private tokenize(texts: string[]): { ids: ort.Tensor; mask: ort.Tensor } {
    const enc = this.tokenizer(texts, { padding: true, truncation: true, max_length: 35 }) as { input_ids: Tensor; attention_mask: Tensor };
    return {
      ids: new ort.Tensor('int64', enc.input_ids.data as BigInt64Array, enc.input_ids.dims),
      mask: new ort.Tensor('int64', enc.attention_mask.data as BigInt64Array, enc.attention_mask.dims),
    };
  }

  async score(query: RerankQuery, candidates: RerankCandidate[], options: RerankOptions = {}): Promise<RerankResult> {
    const started = performance.now();
    const { signal } = options;
    signal?.throwIfAborted();
    const textQuery = 'text' in query;
    for (const c of candidates) {
      if (textQuery && c.image === undefined) throw createError('BAD_ARGUMENT', `candidate ${c.id}`, 'a text query needs candidates with an image');
      if (!textQuery && c.text === undefined) throw createError('BAD_ARGUMENT', `candidate ${c.id}`, 'an image query needs candidates with a text');
    }
    // the image side of each pair: the candidates' (cached by id) or the query's, computed once
    const sides = textQuery
      ? await Promise.all(candidates.map((c) => this.sideOf(c.id, c.image!, signal)))
      : Array<ImageSide>(candidates.length).fill(
          typeof query.image === 'string' ? await this.sideOf(`query:${query.image}`, query.image, signal) : (await this.imageSides([query.image], signal))[0]!,
        );
    const texts = textQuery ? candidates.map(() => query.text) : candidates.map((c) => c.text!);
    const { results, calls, batchSize } = await guardedBatches(
      candidates.map((_, i) => i),
      options.batchSize ?? this.options.batchSize ?? 32,
      async (batch) => this.scoreBatch(batch.map((i) => texts[i]!), batch.map((i) => sides[i]!), signal),
      { signal },
    );
    return { scores: results, ms: performance.now() - started, calls, batchSize };
  }

  private async scoreBatch(texts: string[], sides: ImageSide[], signal?: AbortSignal): Promise<number[]> {
    const { patches, hidden } = sides[0]!;
    const embeds = new Float32Array(sides.length * patches * hidden);
    sides.forEach((s, i) => embeds.set(s.embeds, i * patches * hidden));
    const { ids, mask } = this.tokenize(texts);
    const out = await this.itm.run({ input_ids: ids, attention_mask: mask, image_embeds: new ort.Tensor('float32', embeds, [sides.length, patches, hidden]) });
    const logits = out.itm_logits!.data as Float32Array;
    const scores = sides.map((_, i) => logits[2 * i + 1]! - logits[2 * i]!);
    const w = this.options.itcWeight ?? 0;
    if (w > 0 && this.itc) {
      signal?.throwIfAborted();
      const t = (await this.itc.run({ input_ids: ids, attention_mask: mask })).text_feat!.data as Float32Array;
      const d = t.length / texts.length;
      sides.forEach((s, i) => {
        if (!s.feat) throw createError('MODEL_OUTPUT', this.id, 'itcWeight > 0 needs image_feat from vision_model.onnx');
        let dot = 0;
        for (let j = 0; j < d; j++) dot += t[i * d + j]! * s.feat[j]!;
        scores[i]! += w * dot;
      });
    }
    return scores;
  }

  async dispose(): Promise<void> {
    await Promise.all([this.vision.release(), this.itm.release(), this.itc?.release()]);
  }
}
