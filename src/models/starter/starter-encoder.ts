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
import { weightedConcat } from '../ensemble-encoder.js';
import { inBatches, type EncodeOptions, type Encoder, type ImageInput, type TextCoverage } from '../encoder.js';
import { contentId, isPackEntry, requireFiles, type ModelSource } from '../model-source.js';
import { BackboneRunner, featureVector, needsMobilenet, type BackboneFeatures, type FeatureKind } from './backbone-runner.js';
import { Vocabulary } from './vocab.js';
import { loadOpenVocab, type OpenVocabManifest } from './open-vocab.js';
import { loadQueryBank, type QueryBank, type QueryBankManifest } from '../query-bank.js';
import { readInitializersFile } from '../../onnx/reader.js';
import { textModelOnnx, weightsOf } from './text-graph.js';
import type { DualEncoderConfig, TextEncoderSpec } from './head-spec.js';
import { sessionOptions } from '../../util/ort-session.js';

export const STARTER_FILES = ['manifest.json', 'vocab.json', 'backbone.onnx', 'text_model.onnx', 'image_head.onnx'];
/** what a member folder holds: a pack without the backbone, which it shares with the pack */
const MEMBER_FILES = ['manifest.json', 'vocab.json', 'text_model.onnx', 'image_head.onnx'];
/** what the id hashes: the weights and vocabulary, not the manifest (adding a cross-encoder to a pack keeps its indexes valid) */
const WEIGHT_FILES = STARTER_FILES.filter((f) => f !== 'manifest.json');
const MEMBER_WEIGHT_FILES = MEMBER_FILES.filter((f) => f !== 'manifest.json');

/** More models in one pack (`duo pack-members`): each a folder beside the first, sharing its backbone. */
export interface PackEnsemble {
  /** the pack's own model's weight; the members' and this one are normalised to sum 1 */
  weight: number;
  members: { folder: string; weight: number }[];
  [key: string]: unknown;
}

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
  ensemble?: PackEnsemble;
  queryBank?: QueryBankManifest;
  [key: string]: unknown;
}

/** One model of a pack: its vocabulary, text graph and image head over the shared backbone's features. */
interface Member {
  folder: string;
  manifest: StarterManifest;
  vocab: Vocabulary;
  text: ort.InferenceSession;
  head: ort.InferenceSession;
  kind: FeatureKind;
  dim: number;
  /** √weight: a member's unit vector is scaled by it, so the pack's cosine is Σ weightᵢ·cosᵢ (as EnsembleEncoder does across packs) */
  scale: number;
}

/**
 * A starter pack: one model, or several sharing one backbone run (manifest.ensemble). With
 * several, an item's vector is the members' unit vectors scaled by √weight side by side, as
 * `--model a,b` does for separate packs (../ensemble-encoder.ts), but each image goes through
 * the backbone once and the pack is one model with one id.
 */
export class StarterEncoder implements Encoder {
  readonly normalized = true;
  readonly similarity = { kind: 'cosine' } as const;
  readonly dim: number;

  private constructor(
    readonly id: string,
    readonly manifest: StarterManifest,
    private readonly members: Member[],
    readonly backbone: BackboneRunner,
    readonly queryBank: QueryBank | undefined,
  ) {
    this.dim = members.reduce((a, m) => a + m.dim, 0);
  }

  /** `queryBank: false` loads the pack without its query bank (what rebuilding the bank needs: a damaged one must not stop it). */
  static async load(source: ModelSource, options: { queryBank?: boolean } = {}): Promise<StarterEncoder> {
    requireFiles(source, STARTER_FILES);
    const dir = source.location;
    const manifest = await readManifest(dir);
    const parts = packParts(dir, manifest);
    for (const part of parts.slice(1)) requireFiles({ ...source, location: join(dir, part.folder) }, MEMBER_FILES);
    const manifests = [manifest, ...(await Promise.all(parts.slice(1).map((p) => readManifest(join(dir, p.folder)))))];
    const backbone = await BackboneRunner.load(join(dir, 'backbone.onnx'));
    const members: Member[] = [];
    let bank: QueryBank | undefined;
    try {
      for (const [i, part] of parts.entries()) {
        const kind = manifests[i]!.features ?? 'pooled';
        if (needsMobilenet(kind) && !backbone.hasMobilenet) {
          throw createError('MODEL_UNSUPPORTED', join(dir, part.folder, 'manifest.json'), `features ${kind} need a backbone with MobileNetV2, and ${join(dir, 'backbone.onnx')} has none`);
        }
        members.push(await loadMember(join(dir, part.folder), part.folder, manifests[i]!, kind, part.scale));
      }
      const withBank = manifest.queryBank && options.queryBank !== false;
      bank = withBank ? await loadQueryBank(dir, manifest.queryBank!, members.reduce((a, m) => a + m.dim, 0)) : undefined;
      // the query bank decides the hubness stored with each item: an index built with another is another model's
      const files = [...WEIGHT_FILES, ...parts.slice(1).flatMap((p) => MEMBER_WEIGHT_FILES.map((f) => `${p.folder}/${f}`)), ...(withBank ? [manifest.queryBank!.file] : [])];
      let id = await contentId(source, files);
      // the weights are in the manifest, which the hash leaves out: they change every vector, so they are part of the id (and so is β)
      if (parts.length > 1) id += `[${parts.map((p) => Number((p.scale ** 2).toPrecision(4))).join(',')}]`;
      if (bank) id += `+qb${bank.beta}`;
      return new StarterEncoder(id, manifest, members, backbone, bank);
    } catch (error) {
      // nothing loaded so far outlives a failed load
      await Promise.all([backbone.dispose(), ...members.map((m) => releaseMember(m))]);
      throw error;
    }
  }

  /** The pack's members (one for a single model): folder, feature kind and weight. */
  get parts(): { folder: string; features: FeatureKind; weight: number }[] {
    return this.members.map((m) => ({ folder: m.folder, features: m.kind, weight: m.scale ** 2 }));
  }

  async encodeTexts(texts: string[], options: EncodeOptions = {}): Promise<Float32Array[]> {
    return inBatches(texts, options.batchSize ?? 256, async (batch) => {
      const parts = await Promise.all(this.members.map((m) => runText(m, batch)));
      return this.combine(parts, batch.length);
    }, options);
  }

  /** The words of `text` the pack's vocabulary knows and those encodeTexts drops (a word is known when any member reads it). */
  textCoverage(text: string): TextCoverage {
    const [first, ...rest] = this.members.map((m) => m.vocab.coverage(text));
    if (rest.length === 0) return first!;
    const known = new Set([first!, ...rest].flatMap((c) => c.known));
    const words = [...new Set([first!, ...rest].flatMap((c) => [...c.known, ...c.unknown]))];
    return { known: words.filter((w) => known.has(w)), unknown: words.filter((w) => !known.has(w)) };
  }

  /** Backbone features (pooled and grid) of images: what stage 2 and head training reuse. */
  async features(images: ImageInput[], options: { signal?: AbortSignal } = {}): Promise<BackboneFeatures[]> {
    const decoded = await Promise.all(images.map((img) => (img instanceof Uint8Array || typeof img === 'string' ? loadImage(img) : img)));
    return this.backbone.run(decoded, options);
  }

  /** Image embeddings from backbone features: each member's head on the features it reads. */
  async embedFeatures(features: BackboneFeatures[]): Promise<Float32Array[]> {
    if (features.length === 0) return [];
    const parts = await Promise.all(this.members.map((m) => runHead(m, features.map((f) => featureVector(f, m.kind)))));
    return this.combine(parts, features.length);
  }

  async encodeImages(images: ImageInput[], options: EncodeOptions = {}): Promise<Float32Array[]> {
    return inBatches(images, options.batchSize ?? 8, async (batch) => {
      const features = await this.features(batch, options);
      options.signal?.throwIfAborted();
      return this.embedFeatures(features);
    }, options);
  }

  async dispose(): Promise<void> {
    await Promise.all([...this.members.map((m) => releaseMember(m)), this.backbone.dispose()]);
  }

  /** Members' rows side by side as an ensemble of packs puts them (weightedConcat); a single model's rows as they are. */
  private combine(parts: Float32Array[], n: number): Float32Array[] {
    if (this.members.length === 1) return rows(parts[0]!, n, this.dim);
    const scales = this.members.map((m) => m.scale);
    return Array.from({ length: n }, (_, i) => weightedConcat(this.members.map((m, j) => parts[j]!.subarray(i * m.dim, (i + 1) * m.dim)), scales, this.dim));
  }
}

async function readManifest(dir: string): Promise<StarterManifest> {
  const path = join(dir, 'manifest.json');
  let manifest: StarterManifest;
  try {
    manifest = JSON.parse(await readFile(path, 'utf8')) as StarterManifest;
  } catch (error) {
    throw createError('MODEL_UNSUPPORTED', path, `not JSON (${(error as Error).message})`);
  }
  if (manifest.version !== 1) throw createError('MODEL_UNSUPPORTED', dir, `starter pack version ${manifest.version}`);
  return manifest;
}

/** The pack's own model ('.') and its members' folders, each with √(normalised weight). */
function packParts(dir: string, manifest: StarterManifest): { folder: string; scale: number }[] {
  const e = manifest.ensemble;
  if (!e) return [{ folder: '.', scale: 1 }];
  const where = join(dir, 'manifest.json');
  const members = Array.isArray(e.members) ? e.members : [];
  if (members.length === 0) throw createError('MODEL_UNSUPPORTED', where, 'ensemble.members is empty');
  const weights = [e.weight, ...members.map((m) => m.weight)];
  weights.forEach((w, i) => {
    if (!(typeof w === 'number' && Number.isFinite(w) && w > 0)) throw createError('MODEL_UNSUPPORTED', where, `${i === 0 ? 'ensemble.weight' : `ensemble.members.${i - 1}.weight`} is ${JSON.stringify(w)}, not a positive number`);
  });
  members.forEach((m, i) => {
    // a member is a folder inside the pack: nothing outside it is read
    if (!isPackEntry(m.folder)) throw createError('MODEL_UNSUPPORTED', where, `ensemble.members.${i}.folder must be a folder name inside the pack, not ${JSON.stringify(m.folder)}`);
  });
  const total = weights.reduce((a, w) => a + w, 0);
  return [{ folder: '.', scale: Math.sqrt(e.weight / total) }, ...members.map((m) => ({ folder: m.folder, scale: Math.sqrt(m.weight / total) }))];
}

async function loadMember(dir: string, folder: string, manifest: StarterManifest, kind: FeatureKind, scale: number): Promise<Member> {
  const tokens = JSON.parse(await readFile(join(dir, 'vocab.json'), 'utf8')) as string[];
  const { vocab, textModel } = await textSide(dir, manifest, tokens);
  const opts = sessionOptions();
  const [text, head] = await Promise.allSettled([
    typeof textModel === 'string' ? ort.InferenceSession.create(textModel, opts) : ort.InferenceSession.create(textModel, opts),
    ort.InferenceSession.create(join(dir, 'image_head.onnx'), opts),
  ]);
  if (text.status === 'rejected' || head.status === 'rejected') {
    // the one that loaded is released: a damaged image head leaves no text session behind
    await Promise.all([text, head].map((r) => (r.status === 'fulfilled' ? r.value.release() : undefined)));
    throw text.status === 'rejected' ? text.reason : (head as PromiseRejectedResult).reason;
  }
  return { folder, manifest, vocab, text: text.value, head: head.value, kind, dim: manifest.embedDim, scale };
}

async function releaseMember(m: Member): Promise<void> {
  await Promise.all([m.text.release(), m.head.release()]);
}

async function runText(m: Member, batch: string[]): Promise<Float32Array> {
  const ids = batch.map((t) => m.vocab.encode(t));
  const len = Math.max(...ids.map((i) => i.length));
  const input = new BigInt64Array(batch.length * len);
  const mask = new BigInt64Array(batch.length * len);
  ids.forEach((row, i) => row.forEach((id, j) => {
    input[i * len + j] = BigInt(id);
    mask[i * len + j] = 1n;
  }));
  const out = await m.text.run({
    input_ids: new ort.Tensor('int64', input, [batch.length, len]),
    attention_mask: new ort.Tensor('int64', mask, [batch.length, len]),
  });
  return out.text_embeds!.data as Float32Array;
}

async function runHead(m: Member, pooled: Float32Array[]): Promise<Float32Array> {
  const d = pooled[0]!.length;
  const flat = new Float32Array(pooled.length * d);
  pooled.forEach((p, i) => flat.set(p, i * d));
  const out = await m.head.run({ features: new ort.Tensor('float32', flat, [pooled.length, d]) });
  return out.image_embeds!.data as Float32Array;
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
  // one that lacks a weight the graph needs or holds it in another shape (weightsOf, textModelOnnx)
  const weights = await readInitializersFile(path);
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
    textModel = textModelOnnx(weightsOf(weights), config, ov.table);
  } catch (error) {
    throw createError('MODEL_UNSUPPORTED', path, (error as Error).message);
  }
  return { vocab: new Vocabulary([...tokens, ...ov.words]), textModel };
}

function rows(data: Float32Array, n: number, d: number): Float32Array[] {
  return Array.from({ length: n }, (_, i) => data.slice(i * d, (i + 1) * d));
}
