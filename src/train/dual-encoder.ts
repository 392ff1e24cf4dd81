/**
 * The starter dual encoder trained on frozen backbone features:
 *   image: standardised backbone features → head (linear or MLP) → L2 norm
 *   text:  mean of learned word vectors, or the mean state of a GRU over them (gru.ts) → head (linear or MLP) → L2 norm
 * and its loss and gradients for one batch (symmetric InfoNCE with a learnable temperature).
 */
import { mat, normalizeRows, type Mat } from '../models/mat.js';
import type { Params } from '../models/tensor-file.js';
import { imageHeadSpec, textHeadSpec, type DualEncoderConfig } from '../models/starter/head-spec.js';
import { embeddingBag, embeddingBagBackward, headBackward, headForward, infoNce, initHead, normalizeRowsBackward } from './layers.js';
import { gaussian, seeded } from '../util/random.js';
import { gruBackward, gruForward, initGru, type GruCache } from './gru.js';

export type TextBatch = Int32Array[] | Mat;

export interface DualEncoder {
  config: DualEncoderConfig;
  params: Params;
}

/** CLIP's initial temperature: logit scale 1/0.07. */
export const INITIAL_LOG_SCALE = Math.log(1 / 0.07);
/** CLIP clamps the scale at 100 to keep training stable. */
export const MAX_LOG_SCALE = Math.log(100);

export { seeded };

export function initDualEncoder(config: DualEncoderConfig, seed: number): DualEncoder {
  const rand = seeded(seed);
  const params: Params = new Map();
  // word vectors ~ N(0, 1/wordDim) (Box-Muller), so a mean of a few has unit-ish scale
  if (config.vocabSize > 0) {
    const embed = new Float32Array(config.vocabSize * config.wordDim);
    for (let i = 0; i < embed.length; i++) embed[i] = gaussian(rand) / Math.sqrt(config.wordDim);
    params.set('text.embed', embed);
  }
  initHead(params, 'text.head', textHeadSpec(config), rand);
  initHead(params, 'image.head', imageHeadSpec(config), rand);
  // drawn last, so a pooled run's weights are what they were before GRUs existed, and a GRU
  // run's word vectors are a pooled run's start (the open vocabulary's 'learned' target rebuilds them)
  if (config.textEncoder?.kind === 'gru' && config.vocabSize > 0) initGru(params, 'text.gru', config.wordDim, config.textEncoder.hidden, rand);
  params.set('logScale', Float32Array.from([INITIAL_LOG_SCALE]));
  return { config, params };
}

export async function encodeImageFeatures(model: DualEncoder, x: Mat): Promise<Mat> {
  const { out } = await headForward(model.params, 'image.head', imageHeadSpec(model.config), x);
  return normalizeRows(out).y;
}

/** What the text head reads: dense rows as they are, word ids through the mean or the GRU. */
async function textInput(model: DualEncoder, texts: TextBatch, keep: boolean): Promise<{ pooled: Mat; gru?: GruCache }> {
  if (!Array.isArray(texts)) return { pooled: texts };
  const { config, params } = model;
  const embed = params.get('text.embed')!;
  if (config.textEncoder?.kind !== 'gru') return { pooled: embeddingBag(embed, config.wordDim, texts) };
  const { pooled, cache } = await gruForward(params, 'text.gru', embed, config.wordDim, config.textEncoder.hidden, texts, keep);
  return { pooled, gru: cache };
}

/** Captions per GRU pass when only embedding: its packed input products for all 5,000 dev captions at once would take ~0.4 GB. */
const GRU_CHUNK = 1024;

export async function encodeTextIds(model: DualEncoder, texts: TextBatch): Promise<Mat> {
  if (Array.isArray(texts) && model.config.textEncoder && texts.length > GRU_CHUNK) {
    const parts: Mat[] = [];
    for (let i = 0; i < texts.length; i += GRU_CHUNK) parts.push(await encodeTextIds(model, texts.slice(i, i + GRU_CHUNK)));
    const out = mat(texts.length, parts[0]!.cols);
    let at = 0;
    for (const part of parts) {
      out.data.set(part.data, at);
      at += part.data.length;
    }
    return out;
  }
  const { pooled } = await textInput(model, texts, false);
  const { out } = await headForward(model.params, 'text.head', textHeadSpec(model.config), pooled);
  return normalizeRows(out).y;
}

/** Loss and gradients of one batch of matched pairs: image features row i ↔ texts[i]. */
export async function lossAndGrads(model: DualEncoder, x: Mat, texts: TextBatch): Promise<{ loss: number; accuracy: number; grads: Params }> {
  const { config, params } = model;
  const grads: Params = new Map();
  const img = await headForward(params, 'image.head', imageHeadSpec(config), x);
  const imgN = normalizeRows(img.out);
  const { pooled, gru } = await textInput(model, texts, true);
  const txt = await headForward(params, 'text.head', textHeadSpec(config), pooled);
  const txtN = normalizeRows(txt.out);
  const logScale = params.get('logScale')![0]!;
  const { loss, dT, dI, dLogScale, accuracy } = await infoNce(txtN.y, imgN.y, logScale);
  grads.set('logScale', Float32Array.from([dLogScale]));
  await headBackward(params, grads, 'image.head', imageHeadSpec(config), normalizeRowsBackward(dI, imgN.y, imgN.norms), img.cache);
  const dPooled = await headBackward(params, grads, 'text.head', textHeadSpec(config), normalizeRowsBackward(dT, txtN.y, txtN.norms), txt.cache);
  if (Array.isArray(texts)) {
    const dEmbed = new Float32Array(params.get('text.embed')!.length);
    if (gru) await gruBackward(params, grads, 'text.gru', config.wordDim, config.textEncoder!.hidden, gru, dPooled, dEmbed);
    else embeddingBagBackward(dEmbed, config.wordDim, texts, dPooled);
    grads.set('text.embed', dEmbed);
  }
  return { loss, accuracy, grads };
}

export { mat };
