/**
 * Any encoder with trained projection heads on top (`duo train-head`): the base model's
 * embeddings go through image_head.onnx / text_head.onnx. The id names base and head, so an
 * index built with a head refuses queries without it, and the reverse.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { createError } from '../errors.js';
import type { EncodeOptions, Encoder, ImageInput, TextCoverage } from './encoder.js';
import { contentId, requireFiles, resolveModelSource } from './model-source.js';
import { sessionOptions } from '../util/ort-session.js';

export const HEAD_FILES = ['head.json', 'image_head.onnx', 'text_head.onnx'];

export interface HeadManifest {
  format: 'duo-head';
  baseId: string;
  baseModel: string;
  kind: string;
  dim: number;
  [key: string]: unknown;
}

export class HeadedEncoder implements Encoder {
  readonly normalized = true;
  /** the base model's, when it has one: a head changes vectors, not which words are read */
  readonly textCoverage?: (text: string) => TextCoverage;

  private constructor(
    readonly id: string,
    readonly base: Encoder,
    readonly manifest: HeadManifest,
    private readonly imageHead: ort.InferenceSession,
    private readonly textHead: ort.InferenceSession,
  ) {
    if (base.textCoverage) this.textCoverage = (text) => base.textCoverage!(text);
  }

  get dim(): number {
    return this.manifest.dim;
  }

  get similarity() {
    return { kind: 'cosine' as const };
  }

  static async wrap(base: Encoder, headDir: string): Promise<HeadedEncoder> {
    const source = resolveModelSource(headDir);
    requireFiles(source, HEAD_FILES);
    const manifest = JSON.parse(await readFile(join(source.location, 'head.json'), 'utf8')) as HeadManifest;
    if (manifest.format !== 'duo-head') throw createError('MODEL_UNSUPPORTED', source.location, `head.json format "${manifest.format}"`);
    if (manifest.baseId !== base.id) {
      throw createError('MODEL_UNSUPPORTED', source.location, `head was trained on ${manifest.baseId}, not ${base.id}`);
    }
    const [imageHead, textHead] = await Promise.all([
      ort.InferenceSession.create(join(source.location, 'image_head.onnx'), sessionOptions()),
      ort.InferenceSession.create(join(source.location, 'text_head.onnx'), sessionOptions()),
    ]);
    return new HeadedEncoder(`${base.id}+${await contentId(source, HEAD_FILES)}`, base, manifest, imageHead, textHead);
  }

  private async project(session: ort.InferenceSession, vectors: Float32Array[]): Promise<Float32Array[]> {
    if (vectors.length === 0) return [];
    const d = vectors[0]!.length;
    const flat = new Float32Array(vectors.length * d);
    vectors.forEach((v, i) => flat.set(v, i * d));
    const out = await session.run({ embeds: new ort.Tensor('float32', flat, [vectors.length, d]) });
    const data = out.projected!.data as Float32Array;
    return vectors.map((_, i) => data.slice(i * this.dim, (i + 1) * this.dim));
  }

  async encodeTexts(texts: string[], options?: EncodeOptions): Promise<Float32Array[]> {
    const embeds = await this.base.encodeTexts(texts, options);
    options?.signal?.throwIfAborted();
    return this.project(this.textHead, embeds);
  }

  async encodeImages(images: ImageInput[], options?: EncodeOptions): Promise<Float32Array[]> {
    const embeds = await this.base.encodeImages(images, options);
    options?.signal?.throwIfAborted();
    return this.project(this.imageHead, embeds);
  }

  async dispose(): Promise<void> {
    await Promise.all([this.imageHead.release(), this.textHead.release(), this.base.dispose()]);
  }
}
