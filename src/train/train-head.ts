/**
 * Projection heads on any frozen encoder (CLIP, SigLIP, the starter pack): embed Flickr8k
 * train/dev once (cached by encoder id), train residual image and text heads with the same
 * contrastive loop as the starter model, and report dev retrieval before and after.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { readFlickr8k } from '../data/readers/flickr8k.js';
import type { RankMetrics } from '../eval/metrics.js';
import { evaluateEmbeddings, rsum } from '../eval/retrieval-eval.js';
import { encodeModel } from '../onnx/writer.js';
import type { Encoder } from '../models/encoder.js';
import { loadTensors, saveTensors, type Params } from '../models/tensor-file.js';
import { stackRows } from '../models/mat.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { imageHeadSpec, textHeadSpec, type DualEncoderConfig, type HeadKind, type HeadSpec } from '../models/starter/head-spec.js';
import { headGraph } from './export-pack.js';
import { readRun, writeJson } from './runs.js';
import { trainOnSplits, type FeatureSplit } from './train-starter.js';
import type { TrainingTracker } from './mlflow.js';

export interface TrainHeadOptions {
  encoder: Encoder;
  encoderSpec: string;
  head: HeadKind;
  data: string;
  runDir: string;
  cacheDir: string;
  lr: number;
  weightDecay: number;
  batchSize: number;
  epochs: number;
  patience: number;
  hidden: number;
  seed: number;
  resume?: boolean;
  onLog?: (line: string) => void;
  onProgress?: (what: string, done: number, total: number) => void;
  /** MLflow (src/train/mlflow.ts) */
  tracker?: TrainingTracker;
}

type Metrics = { textToImage: RankMetrics; imageToText: RankMetrics; rsum: number };

async function embedSplit(opts: TrainHeadOptions, split: string): Promise<FeatureSplit> {
  const ds = await readFlickr8k(opts.data, split);
  const safe = opts.encoder.id.replace(/[^A-Za-z0-9@._-]/g, '_');
  const path = join(opts.cacheDir, 'embeddings', safe, `flickr8k-${split}.bin`);
  let images: Float32Array;
  let texts: Float32Array;
  if (existsSync(path)) {
    const t = await loadTensors(path);
    images = t.get('images')!;
    texts = t.get('texts')!;
  } else {
    const flat = (rows: Float32Array[]) => stackRows(rows, opts.encoder.dim);
    images = flat(await opts.encoder.encodeImages(ds.images.map((i) => i.source), { onProgress: (d, n) => opts.onProgress?.(`${split} images`, d, n) }));
    texts = flat(await opts.encoder.encodeTexts(ds.captions.map((c) => c.text), { onProgress: (d, n) => opts.onProgress?.(`${split} captions`, d, n) }));
    mkdirSync(join(path, '..'), { recursive: true });
    await saveTensors(path, new Map([['images', images], ['texts', texts]]));
  }
  const index = new Map(ds.images.map((img, i) => [img.id, i]));
  return {
    images: ds.images.length,
    dim: opts.encoder.dim,
    x: images,
    captions: [],
    flatCaptions: [],
    captionImage: ds.captions.map((c) => index.get(c.imageId)!),
    textX: texts,
    textDim: opts.encoder.dim,
  };
}

function evaluateSplit(split: FeatureSplit): Metrics {
  const d = split.dim;
  const rows = (x: Float32Array, n: number) => Array.from({ length: n }, (_, i) => x.subarray(i * d, (i + 1) * d));
  const { textToImage, imageToText } = evaluateEmbeddings(rows(split.x, split.images), rows(split.textX!, split.captionImage.length), split.captionImage);
  return { textToImage, imageToText, rsum: rsum({ textToImage, imageToText }) };
}

export function headOnnx(params: Params, prefix: string, spec: HeadSpec): Uint8Array {
  const g = headGraph(params, prefix, spec, 'embeds', 'projected');
  return encodeModel({
    name: `${prefix}-projection`,
    nodes: g.nodes,
    initializers: g.initializers,
    inputs: [{ name: 'embeds', type: 'float', shape: ['batch', spec.inDim] }],
    outputs: [{ name: 'projected', type: 'float', shape: ['batch', spec.outDim] }],
  });
}

export async function trainHead(opts: TrainHeadOptions): Promise<{ before: Metrics; after: Metrics; headDir: string }> {
  const train = await embedSplit(opts, 'train');
  const dev = await embedSplit(opts, 'dev');
  const before = evaluateSplit(dev);
  opts.onLog?.(`before: dev rsum ${before.rsum.toFixed(1)}`);
  const { best } = await trainOnSplits(
    {
      runDir: opts.runDir,
      resume: opts.resume,
      head: opts.head,
      hidden: opts.hidden,
      wordDim: 0,
      embedDim: opts.encoder.dim,
      batchSize: opts.batchSize,
      epochs: opts.epochs,
      lr: opts.lr,
      weightDecay: opts.weightDecay,
      patience: opts.patience,
      seed: opts.seed,
      minCount: 0,
      featureDropout: 0,
      wordDropout: 0,
      command: `duo ${process.argv.slice(2).join(' ')}`,
      dataInfo: { path: opts.data, train: 'train', dev: 'dev', encoder: opts.encoderSpec, encoderId: opts.encoder.id },
      backbone: opts.encoderSpec,
      standardize: false,
      residual: true,
      onLog: opts.onLog,
      tracker: opts.tracker,
    },
    train,
    dev,
    undefined,
  );
  const run = readRun(opts.runDir);
  const config = run.params.config as DualEncoderConfig;
  const params = await loadTensors(join(opts.runDir, 'best.bin'));
  const headDir = join(opts.runDir, 'head');
  mkdirSync(headDir, { recursive: true });
  await writeFileAtomic(join(headDir, 'image_head.onnx'), headOnnx(params, 'image.head', imageHeadSpec(config)));
  await writeFileAtomic(join(headDir, 'text_head.onnx'), headOnnx(params, 'text.head', textHeadSpec(config)));
  const after = best!.dev;
  await writeJson(join(headDir, 'head.json'), {
    format: 'duo-head',
    baseModel: opts.encoderSpec,
    baseId: opts.encoder.id,
    kind: opts.head,
    dim: opts.encoder.dim,
    residual: true,
    trainedOn: 'Flickr8k train, chosen on dev',
    run: run.id,
    devBefore: before,
    devAfter: after,
  });
  return { before, after, headDir };
}
