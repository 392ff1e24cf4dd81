/**
 * Trains the starter dual encoder on frozen backbone features: seeded, resumable (a
 * checkpoint after every epoch), early-stopped on dev R@1+R@5+R@10 of both directions, and
 * tracked in its own run folder.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readFlickr8k } from '../data/readers/flickr8k.js';
import type { RetrievalDataset } from '../data/dataset.js';
import { createError } from '../errors.js';
import { evaluateEmbeddings, rsum } from '../eval/retrieval-eval.js';
import { featureDim, featureVector, type FeatureKind } from '../models/starter/backbone-runner.js';
import { Vocabulary } from '../models/starter/vocab.js';
import { gloveInitialEmbed } from './open-vocab/glove-init.js';
import { HELD_OUT_RULE, heldOutWords, withoutWords } from './open-vocab/held-out.js';
import { adamwInit, adamwStep, type AdamWState } from './adamw.js';
import type { DualEncoderConfig, HeadKind } from '../models/starter/head-spec.js';
import { encodeImageFeatures, encodeTextIds, initDualEncoder, lossAndGrads, MAX_LOG_SCALE, seeded, type DualEncoder, type TextBatch } from './dual-encoder.js';
import { mat } from '../models/mat.js';
import { dropFeatures, dropWords } from './dropout.js';
import { shuffle, warmupCosine } from './schedule.js';
import { appendMetrics, writeJson, type EpochMetrics } from './runs.js';
import { ensureBackbone, splitFeatures } from './starter-features.js';
import { saveTensors } from '../models/tensor-file.js';
import { loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import type { TrainingTracker } from './mlflow.js';

export interface TrainOptions {
  data: string;
  runDir: string;
  resume?: boolean;
  head: HeadKind;
  hidden: number;
  wordDim: number;
  embedDim: number;
  batchSize: number;
  epochs: number;
  lr: number;
  weightDecay: number;
  patience: number;
  seed: number;
  minCount: number;
  /** training-time dropout of image feature dimensions and of caption words */
  featureDropout: number;
  wordDropout: number;
  features: FeatureKind;
  /** hide this many mid-frequency words from training (src/train/open-vocab/held-out.ts): the open-vocabulary measurement */
  holdOut?: number;
  /** start the word vectors of words GloVe has from their GloVe rows (src/train/open-vocab/glove-init.ts) instead of at random */
  initGlove?: boolean;
  /** the text encoder over word vectors: absent, their mean; 'gru', a GRU of textHidden units (src/train/gru.ts) */
  textEncoder?: 'gru';
  textHidden?: number;
  cacheDir: string;
  backboneOnnx: string;
  command: string;
  onLog?: (line: string) => void;
  onFeatures?: (split: string, done: number, total: number) => void;
  /** told when the run folder holds its params and after every epoch (MLflow, src/train/mlflow.ts) */
  tracker?: TrainingTracker;
}

/** The GRU's hidden size when --text-hidden is not given. */
export const DEFAULT_TEXT_HIDDEN = 512;

/** One split as training sees it: image features and tokenised captions. */
export interface FeatureSplit {
  images: number;
  dim: number;
  x: Float32Array; // images × dim
  captions: Int32Array[][]; // per image
  flatCaptions: Int32Array[];
  captionImage: number[];
  /** dense text inputs instead of word ids: captions × textDim, row c for caption c */
  textX?: Float32Array;
  textDim?: number;
}

interface Split extends FeatureSplit {
  ds: RetrievalDataset;
}

interface Checkpoint {
  epoch: number;
  step: number;
  bestRsum: number;
  bestEpoch: number;
  badEpochs: number;
  adamStep: number;
  seconds: number;
}

function standardiser(x: Float32Array, n: number, d: number): { mean: Float32Array; std: Float32Array } {
  const mean = new Float32Array(d);
  const std = new Float32Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j]! += x[i * d + j]! / n;
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) std[j]! += (x[i * d + j]! - mean[j]!) ** 2 / n;
  for (let j = 0; j < d; j++) std[j] = Math.sqrt(std[j]!) + 1e-6;
  return { mean, std };
}

async function loadSplit(opts: TrainOptions, split: string): Promise<Split> {
  const ds = await readFlickr8k(opts.data, split);
  const feats = await splitFeatures(ds, opts.backboneOnnx, opts.cacheDir, (d, n) => opts.onFeatures?.(split, d, n));
  const dim = featureDim(opts.features);
  const x = new Float32Array(ds.images.length * dim);
  feats.forEach((f, i) => x.set(featureVector(f, opts.features), i * dim));
  const index = new Map(ds.images.map((img, i) => [img.id, i]));
  const captionImage = ds.captions.map((c) => index.get(c.imageId)!);
  return { ds, images: ds.images.length, dim, x, captions: [], flatCaptions: [], captionImage };
}

function tokenize(split: Split, vocab: Vocabulary): void {
  split.flatCaptions = split.ds.captions.map((c) => vocab.encode(c.text));
  split.captions = split.ds.images.map(() => []);
  split.flatCaptions.forEach((ids, c) => split.captions[split.captionImage[c]!]!.push(ids));
}

function denseRows(x: Float32Array, d: number, rows: number[]) {
  const out = mat(rows.length, d);
  rows.forEach((r, i) => out.data.set(x.subarray(r * d, (r + 1) * d), i * d));
  return out;
}

function applyStandardiser(x: Float32Array, mean: Float32Array, std: Float32Array): void {
  const d = mean.length;
  for (let i = 0; i < x.length; i++) x[i] = (x[i]! - mean[i % d]!) / std[i % d]!;
}

export async function evaluateOnFeatures(model: DualEncoder, split: FeatureSplit) {
  const imgs = await encodeImageFeatures(model, mat(split.images, split.dim, split.x));
  const txts = await encodeTextIds(model, split.textX ? mat(split.captionImage.length, split.textDim!, split.textX) : split.flatCaptions);
  const rows = (m: { data: Float32Array; cols: number; rows: number }) => Array.from({ length: m.rows }, (_, i) => m.data.subarray(i * m.cols, (i + 1) * m.cols));
  const { textToImage, imageToText } = evaluateEmbeddings(rows(imgs), rows(txts), split.captionImage);
  return { textToImage, imageToText, rsum: rsum({ textToImage, imageToText }) };
}

const HYPER_KEYS = ['head', 'hidden', 'wordDim', 'embedDim', 'batchSize', 'epochs', 'lr', 'weightDecay', 'patience', 'seed', 'minCount', 'featureDropout', 'wordDropout', 'features', 'holdOut', 'initGlove', 'textEncoder', 'textHidden'] as const;

export type TrainLoopOptions = Omit<TrainOptions, 'data' | 'cacheDir' | 'backboneOnnx' | 'onFeatures' | 'features' | 'holdOut'> & {
  holdOut?: number;
  /** the word vectors to start from (vocabSize × wordDim) instead of random ones */
  initEmbed?: Float32Array;
  features?: FeatureKind;
  dataInfo: Record<string, unknown>;
  backbone: string;
  /** standardise image features with train statistics (starter) or feed them as they are (heads on embeddings) */
  standardize?: boolean;
  residual?: boolean;
};

/** Reads Flickr8k, its backbone features and the vocabulary, then trains. */
export async function trainStarter(opts: TrainOptions): Promise<{ runDir: string; best: EpochMetrics | undefined }> {
  await ensureBackbone(opts.backboneOnnx, opts.cacheDir);
  const train = await loadSplit(opts, 'train');
  const dev = await loadSplit(opts, 'dev');
  // the vocabulary comes from the training captions alone
  const full = Vocabulary.build(train.ds.captions.map((c) => c.text), opts.minCount);
  const heldOut = opts.holdOut ? heldOutWords(full, { ...HELD_OUT_RULE, count: opts.holdOut }) : [];
  const vocab = heldOut.length > 0 ? withoutWords(full, heldOut) : full;
  tokenize(train, vocab);
  tokenize(dev, vocab);
  const dataInfo = { path: opts.data, train: 'train', dev: 'dev', trainImages: train.images, trainCaptions: train.ds.captions.length, ...(heldOut.length > 0 ? { heldOut, heldOutRule: { ...HELD_OUT_RULE, count: opts.holdOut } } : {}) };
  const initEmbed = opts.initGlove ? await gloveInitialEmbed(vocab.tokens, opts.wordDim, opts.seed) : undefined;
  if (initEmbed) opts.onLog?.(`word vectors start from GloVe for ${initEmbed.found} of ${vocab.size - 1} words`);
  return trainOnSplits({ ...opts, dataInfo, backbone: opts.backboneOnnx, initEmbed: initEmbed?.embed }, train, dev, vocab);
}

/**
 * The training loop proper, on prepared splits: seeded, checkpointed every epoch,
 * resumable with identical results, early-stopped on dev.
 */
export async function trainOnSplits(opts: TrainLoopOptions, train: FeatureSplit, dev: FeatureSplit, vocab: Vocabulary | undefined): Promise<{ runDir: string; best: EpochMetrics | undefined }> {
  const log = opts.onLog ?? (() => {});
  mkdirSync(opts.runDir, { recursive: true });
  const paramsPath = join(opts.runDir, 'params.json');
  const hyper = Object.fromEntries(HYPER_KEYS.map((k) => [k, opts[k]]));
  if (opts.resume) {
    if (!existsSync(paramsPath)) throw createError('FILE_NOT_FOUND', paramsPath);
    const saved = JSON.parse(readFileSync(paramsPath, 'utf8')) as { hyper: Record<string, unknown>; backbone?: string };
    for (const k of HYPER_KEYS) {
      if (saved.hyper[k] !== hyper[k]) throw createError('BAD_ARGUMENT', `--${k}`, `is ${hyper[k]} but the run being resumed used ${saved.hyper[k]}`);
    }
    if (saved.backbone !== undefined && saved.backbone !== opts.backbone) throw createError('BAD_ARGUMENT', '--backbone', `is ${opts.backbone} but the run being resumed used ${saved.backbone}`);
  } else if (existsSync(join(opts.runDir, 'checkpoint.json'))) {
    throw createError('BAD_ARGUMENT', opts.runDir, 'already holds a run: pass --resume to continue it, or another --run name');
  }

  const { mean, std } = opts.standardize === false ? { mean: new Float32Array(train.dim), std: new Float32Array(train.dim).fill(1) } : standardiser(train.x, train.images, train.dim);
  train = { ...train, x: Float32Array.from(train.x) };
  dev = { ...dev, x: Float32Array.from(dev.x) };
  applyStandardiser(train.x, mean, std);
  applyStandardiser(dev.x, mean, std);

  const config: DualEncoderConfig = {
    imageDim: train.dim,
    vocabSize: vocab?.size ?? 0,
    wordDim: opts.wordDim,
    textDim: train.textDim,
    embedDim: opts.embedDim,
    head: opts.head,
    hidden: opts.hidden,
    residual: opts.residual,
    ...(opts.textEncoder === 'gru' && vocab ? { textEncoder: { kind: 'gru' as const, hidden: opts.textHidden ?? DEFAULT_TEXT_HIDDEN } } : {}),
  };
  const model = initDualEncoder(config, opts.seed);
  if (opts.initEmbed) model.params.set('text.embed', Float32Array.from(opts.initEmbed));
  let adam: AdamWState = adamwInit(model.params);
  let state: Checkpoint = { epoch: 0, step: 0, bestRsum: -1, bestEpoch: 0, badEpochs: 0, adamStep: 0, seconds: 0 };

  if (opts.resume && existsSync(join(opts.runDir, 'checkpoint.json'))) {
    state = JSON.parse(readFileSync(join(opts.runDir, 'checkpoint.json'), 'utf8')) as Checkpoint;
    const saved = await loadCheckpoint(join(opts.runDir, 'checkpoint.bin'), state.adamStep);
    for (const [k, v] of saved.params) model.params.set(k, v);
    adam = saved.adam;
    log(`resumed ${opts.runDir} after epoch ${state.epoch} (best dev rsum ${state.bestRsum.toFixed(1)} at epoch ${state.bestEpoch})`);
  } else {
    await writeJson(paramsPath, {
      hyper,
      config,
      data: opts.dataInfo,
      backbone: opts.backbone,
      command: opts.command,
      startedAt: new Date().toISOString(),
    });
    if (vocab) await writeJson(join(opts.runDir, 'vocab.json'), vocab.tokens);
    await saveTensors(join(opts.runDir, 'image-norm.bin'), new Map([['mean', mean], ['std', std]]));
  }
  await opts.tracker?.started();

  const perPass = Math.ceil(train.images / opts.batchSize);
  const captionsOf: number[][] = Array.from({ length: train.images }, () => []);
  train.captionImage.forEach((img, c) => captionsOf[img]!.push(c));
  const totalSteps = opts.epochs * 5 * perPass;
  // weights decay, biases and the temperature do not; the GRU's recurrent weights are text.gru.R
  const decay = (name: string) => name.endsWith('.W') || name.endsWith('.R') || name === 'text.embed';
  for (let epoch = state.epoch + 1; epoch <= opts.epochs; epoch++) {
    const started = performance.now();
    const rand = seeded(opts.seed * 100_003 + epoch);
    let lossSum = 0;
    let accSum = 0;
    let batches = 0;
    let lr = opts.lr;
    for (let pass = 0; pass < 5; pass++) {
      const order = shuffle(train.images, rand);
      for (let b = 0; b < order.length; b += opts.batchSize) {
        const rows = order.slice(b, b + opts.batchSize);
        if (rows.length < 2) continue;
        const d = train.dim;
        const x = mat(rows.length, d);
        rows.forEach((r, i) => x.data.set(train.x.subarray(r * d, (r + 1) * d), i * d));
        dropFeatures(x.data, opts.featureDropout, rand);
        const picks = rows.map((r) => {
          const caps = captionsOf[r]!;
          return caps[(pass + Math.floor(rand() * caps.length)) % caps.length]!;
        });
        const texts: TextBatch = train.textX
          ? denseRows(train.textX, train.textDim!, picks)
          : picks.map((c) => dropWords(train.flatCaptions[c]!, opts.wordDropout, rand));
        const { loss, accuracy, grads } = await lossAndGrads(model, x, texts);
        lr = warmupCosine(state.step, totalSteps, opts.lr, 0.03);
        adamwStep(model.params, grads, adam, { lr: opts.lr, weightDecay: opts.weightDecay, decay }, lr);
        const ls = model.params.get('logScale')!;
        ls[0] = Math.min(ls[0]!, MAX_LOG_SCALE);
        state.step++;
        lossSum += loss;
        accSum += accuracy;
        batches++;
      }
    }
    const devMetrics = await evaluateOnFeatures(model, dev);
    const seconds = (performance.now() - started) / 1000;
    state.seconds += seconds;
    const m: EpochMetrics = {
      epoch,
      step: state.step,
      loss: lossSum / batches,
      trainAccuracy: accSum / batches,
      lr,
      temperature: 1 / Math.exp(model.params.get('logScale')![0]!),
      dev: devMetrics,
      seconds,
    };
    await appendMetrics(opts.runDir, m);
    await opts.tracker?.epoch(m);
    const improved = devMetrics.rsum > state.bestRsum;
    if (improved) {
      state.bestRsum = devMetrics.rsum;
      state.bestEpoch = epoch;
      state.badEpochs = 0;
      await saveTensors(join(opts.runDir, 'best.bin'), model.params);
    } else state.badEpochs++;
    state.epoch = epoch;
    state.adamStep = adam.step;
    await saveCheckpoint(join(opts.runDir, 'checkpoint.bin'), model.params, adam);
    await writeJson(join(opts.runDir, 'checkpoint.json'), state);
    log(
      `epoch ${epoch}: loss ${m.loss.toFixed(3)} acc ${(100 * m.trainAccuracy).toFixed(1)}% | dev t→i R@1/5/10 ${devMetrics.textToImage['R@1'].toFixed(1)}/${devMetrics.textToImage['R@5'].toFixed(1)}/${devMetrics.textToImage['R@10'].toFixed(1)} ` +
        `i→t ${devMetrics.imageToText['R@1'].toFixed(1)}/${devMetrics.imageToText['R@5'].toFixed(1)}/${devMetrics.imageToText['R@10'].toFixed(1)} rsum ${devMetrics.rsum.toFixed(1)}${improved ? ' *' : ''} | ${seconds.toFixed(1)} s`,
    );
    if (state.badEpochs >= opts.patience) {
      log(`early stop: no dev improvement for ${opts.patience} epochs`);
      break;
    }
  }
  const metrics = readFileSync(join(opts.runDir, 'metrics.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as EpochMetrics);
  const best = metrics.find((m) => m.epoch === state.bestEpoch);
  await writeJson(join(opts.runDir, 'summary.json'), { bestEpoch: state.bestEpoch, bestDev: best?.dev, epochsRun: state.epoch, trainSeconds: state.seconds, vocabSize: vocab?.size ?? 0, finishedAt: new Date().toISOString() });
  return { runDir: opts.runDir, best };
}
