/**
 * The starter dual encoder trained on frozen backbone features:
 *   image: standardised backbone features → head (linear or MLP) → L2 norm
 *   text:  mean of learned word vectors → head (linear or MLP) → L2 norm
 * and its loss and gradients for one batch (symmetric InfoNCE with a learnable temperature).
 */
import { mat, normalizeRows, type Mat } from '../models/mat.js';
import type { Params } from '../models/tensor-file.js';
import { imageHeadSpec, textHeadSpec, type DualEncoderConfig } from '../models/starter/head-spec.js';
import { embeddingBag, embeddingBagBackward, headBackward, headForward, infoNce, initHead, normalizeRowsBackward } from './layers.js';
import { seeded } from '../util/random.js';

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
    for (let i = 0; i < embed.length; i++) embed[i] = Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand()) / Math.sqrt(config.wordDim);
    params.set('text.embed', embed);
  }
  initHead(params, 'text.head', textHeadSpec(config), rand);
  initHead(params, 'image.head', imageHeadSpec(config), rand);
  params.set('logScale', Float32Array.from([INITIAL_LOG_SCALE]));
  return { config, params };
}

export async function encodeImageFeatures(model: DualEncoder, x: Mat): Promise<Mat> {
  const { out } = await headForward(model.params, 'image.head', imageHeadSpec(model.config), x);
  return normalizeRows(out).y;
}

const textInput = (model: DualEncoder, texts: TextBatch): Mat =>
  Array.isArray(texts) ? embeddingBag(model.params.get('text.embed')!, model.config.wordDim, texts) : texts;

export async function encodeTextIds(model: DualEncoder, texts: TextBatch): Promise<Mat> {
  const pooled = textInput(model, texts);
  const { out } = await headForward(model.params, 'text.head', textHeadSpec(model.config), pooled);
  return normalizeRows(out).y;
}

/** Loss and gradients of one batch of matched pairs: image features row i ↔ texts[i]. */
export async function lossAndGrads(model: DualEncoder, x: Mat, texts: TextBatch): Promise<{ loss: number; accuracy: number; grads: Params }> {
  const { config, params } = model;
  const grads: Params = new Map();
  const img = await headForward(params, 'image.head', imageHeadSpec(config), x);
  const imgN = normalizeRows(img.out);
  const pooled = textInput(model, texts);
  const txt = await headForward(params, 'text.head', textHeadSpec(config), pooled);
  const txtN = normalizeRows(txt.out);
  const logScale = params.get('logScale')![0]!;
  const { loss, dT, dI, dLogScale, accuracy } = await infoNce(txtN.y, imgN.y, logScale);
  grads.set('logScale', Float32Array.from([dLogScale]));
  await headBackward(params, grads, 'image.head', imageHeadSpec(config), normalizeRowsBackward(dI, imgN.y, imgN.norms), img.cache);
  const dPooled = await headBackward(params, grads, 'text.head', textHeadSpec(config), normalizeRowsBackward(dT, txtN.y, txtN.norms), txt.cache);
  if (Array.isArray(texts)) {
    const dEmbed = new Float32Array(params.get('text.embed')!.length);
    embeddingBagBackward(dEmbed, config.wordDim, texts, dPooled);
    grads.set('text.embed', dEmbed);
  }
  return { loss, accuracy, grads };
}

export { mat };
