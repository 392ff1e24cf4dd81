/**
 * The starter model pack behind the same Encoder interface as CLIP: text through the pack's
 * vocabulary (then its open vocabulary, if it has one) and text_model.onnx; images through the
 * shared decoder, the CenterNet backbone and image_head.onnx.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { loadImage } from '../../data/image-loader.js';
import { createError } from '../../errors.js';
import { inBatches, type EncodeOptions, type Encoder, type ImageInput, type TextCoverage } from '../encoder.js';
import { contentId, requireFiles, type ModelSource } from '../model-source.js';
import { BackboneRunner, featureVector, type BackboneFeatures, type FeatureKind } from './backbone-runner.js';
import { Vocabulary } from './vocab.js';
import { loadOpenVocab, type OpenVocabManifest } from './open-vocab.js';
import { readInitializersFile } from '../../onnx/reader.js';
import { textModelOnnx } from './text-graph.js';
import type { DualEncoderConfig, TextEncoderSpec } from './head-spec.js';
import { sessionOptions } from '../../util/ort-session.js';

export const STARTER_FILES = ['manifest.json', 'vocab.json', 'backbone.onnx', 'text_model.onnx', 'image_head.onnx'];
/** what the id hashes: the weights and vocabulary, not the manifest (adding a cross-encoder to a pack keeps its indexes valid) */
const WEIGHT_FILES = STARTER_FILES.filter((f) => f !== 'manifest.json');

export interface StarterManifest {
  format: string;
  version: number;
  embedDim: number;
  features?: FeatureKind;
  /** encoder: what reads the word vectors (text-graph.ts); packs from before it have none and are pooled */
  text?: { vocabSize: number; wordDim: number; encoder?: { kind: 'pooled' } | TextEncoderSpec };
  head?: 'linear' | 'mlp';
  hidden?: number;
  openVocabulary?: OpenVocabManifest;
  [key: string]: unknown;
}

export class StarterEncoder implements Encoder {
  readonly normalized = true;
  readonly similarity = { kind: 'cosine' } as const;

  private constructor(
    readonly id: string,
    readonly dim: number,
    readonly manifest: StarterManifest,
    private readonly vocab: Vocabulary,
    private readonly text: ort.InferenceSession,
    private readonly head: ort.InferenceSession,
    readonly backbone: BackboneRunner,
  ) {}

  static async load(source: ModelSource): Promise<StarterEncoder> {
    requireFiles(source, STARTER_FILES);
    const dir = source.location;
    const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as StarterManifest;
    if (manifest.version !== 1) throw createError('MODEL_UNSUPPORTED', dir, `starter pack version ${manifest.version}`);
    const tokens = JSON.parse(await readFile(join(dir, 'vocab.json'), 'utf8')) as string[];
    const { vocab, textModel } = await textSide(dir, manifest, tokens);
    const opts = sessionOptions();
    const [text, head, backbone] = await Promise.all([
      typeof textModel === 'string' ? ort.InferenceSession.create(textModel, opts) : ort.InferenceSession.create(textModel, opts),
      ort.InferenceSession.create(join(dir, 'image_head.onnx'), opts),
      BackboneRunner.load(join(dir, 'backbone.onnx')),
    ]);
    return new StarterEncoder(await contentId(source, WEIGHT_FILES), manifest.embedDim, manifest, vocab, text, head, backbone);
  }

  async encodeTexts(texts: string[], options: EncodeOptions = {}): Promise<Float32Array[]> {
    return inBatches(texts, options.batchSize ?? 256, async (batch) => {
      const ids = batch.map((t) => this.vocab.encode(t));
      const len = Math.max(...ids.map((i) => i.length));
      const input = new BigInt64Array(batch.length * len);
      const mask = new BigInt64Array(batch.length * len);
      ids.forEach((row, i) => row.forEach((id, j) => {
        input[i * len + j] = BigInt(id);
        mask[i * len + j] = 1n;
      }));
      const out = await this.text.run({
        input_ids: new ort.Tensor('int64', input, [batch.length, len]),
        attention_mask: new ort.Tensor('int64', mask, [batch.length, len]),
      });
      return rows(out.text_embeds!.data as Float32Array, batch.length, this.dim);
    }, options);
  }

  /** The words of `text` the pack's vocabulary knows and those encodeTexts drops. */
  textCoverage(text: string): TextCoverage {
    return this.vocab.coverage(text);
  }

  /** Backbone features (pooled and grid) of images: what stage 2 and head training reuse. */
  async features(images: ImageInput[], options: { signal?: AbortSignal } = {}): Promise<BackboneFeatures[]> {
    const decoded = await Promise.all(images.map((img) => (img instanceof Uint8Array || typeof img === 'string' ? loadImage(img) : img)));
    return this.backbone.run(decoded, options);
  }

  async embedFeatures(pooled: Float32Array[]): Promise<Float32Array[]> {
    if (pooled.length === 0) return [];
    const d = pooled[0]!.length;
    const flat = new Float32Array(pooled.length * d);
    pooled.forEach((p, i) => flat.set(p, i * d));
    const out = await this.head.run({ features: new ort.Tensor('float32', flat, [pooled.length, d]) });
    return rows(out.image_embeds!.data as Float32Array, pooled.length, this.dim);
  }

  async encodeImages(images: ImageInput[], options: EncodeOptions = {}): Promise<Float32Array[]> {
    const kind = this.manifest.features ?? 'pooled';
    return inBatches(images, options.batchSize ?? 8, async (batch) => {
      const features = await this.features(batch, options);
      options.signal?.throwIfAborted();
      return this.embedFeatures(features.map((f) => featureVector(f, kind)));
    }, options);
  }

  async dispose(): Promise<void> {
    await Promise.all([this.text.release(), this.head.release(), this.backbone.dispose()]);
  }
}

/**
 * The vocabulary and the text graph. With an open vocabulary, its words take the ids after the
 * trained vocabulary's (a word is looked up there first: Vocabulary keeps the first id of a
 * token, and the open list holds no trained word anyway) and the graph is text_model.onnx
 * rebuilt around its own weights with the open rows added (text-graph.ts): one graph and one
 * code path for every query, whether its words were trained or not, rather than a second
 * pooling in JavaScript for queries with open words.
 */
async function textSide(dir: string, manifest: StarterManifest, tokens: string[]): Promise<{ vocab: Vocabulary; textModel: string | Uint8Array }> {
  const path = join(dir, 'text_model.onnx');
  const open = manifest.openVocabulary;
  if (!open) return { vocab: new Vocabulary(tokens), textModel: path };
  if (!manifest.text || !manifest.head) throw createError('MODEL_UNSUPPORTED', dir, 'an open vocabulary needs manifest.text and manifest.head');
  const { vocabSize, wordDim } = manifest.text;
  if (vocabSize !== tokens.length) throw createError('MODEL_UNSUPPORTED', dir, `vocab.json holds ${tokens.length} words, the manifest ${vocabSize}`);
  const encoder = manifest.text.encoder ?? { kind: 'pooled' };
  // text_model.onnx runs whatever graph it holds; only a rebuild must know how to write it again
  if (encoder.kind !== 'pooled' && !(encoder.kind === 'gru' && Number.isInteger(encoder.hidden) && encoder.hidden > 0)) {
    throw createError('MODEL_UNSUPPORTED', dir, `cannot add an open vocabulary to text encoder ${JSON.stringify(encoder)} (manifest.text.encoder)`);
  }
  const ov = await loadOpenVocab(dir, open, wordDim);
  // a truncated or damaged file is MODEL_UNSUPPORTED naming it (readInitializersFile), and so is
  // one that lacks a weight the graph needs or holds it in another shape (textModelOnnx)
  const weights = await readInitializersFile(path);
  const params = new Map([...weights].map(([name, t]) => [name, t.data]));
  const config: DualEncoderConfig = {
    imageDim: 0,
    vocabSize,
    wordDim,
    embedDim: manifest.embedDim,
    head: manifest.head,
    hidden: manifest.hidden ?? 0,
    ...(encoder.kind === 'gru' ? { textEncoder: encoder } : {}),
  };
  let textModel: Uint8Array;
  try {
    textModel = textModelOnnx(params, config, ov.table);
  } catch (error) {
    throw createError('MODEL_UNSUPPORTED', path, (error as Error).message);
  }
  return { vocab: new Vocabulary([...tokens, ...ov.words]), textModel };
}

function rows(data: Float32Array, n: number, d: number): Float32Array[] {
  return Array.from({ length: n }, (_, i) => data.slice(i * d, (i + 1) * d));
}
