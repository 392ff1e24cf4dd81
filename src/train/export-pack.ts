/**
 * Writes a training run's best weights as the starter model pack: ONNX graphs for the text
 * side (word vectors → masked mean, or a GRU and the masked mean of its states → head → L2 norm;
 * manifest.text.encoder says which) and the image head (standardise →
 * head → L2 norm), the vocabulary, and a manifest saying where every number came from.
 * The backbone ONNX sits beside them.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { BACKBONE_PACKAGE, MOBILENET_DIM, MOBILENET_PACKAGE, sha256File } from '../models/starter/backbone.js';
import { needsMobilenet, type FeatureKind } from '../models/starter/backbone-runner.js';
import { loadTensors, type Params } from '../models/tensor-file.js';
import { encodeModel } from '../onnx/writer.js';
import { headGraph, textModelOnnx, type WeightStorage } from '../models/starter/text-graph.js';
import { imageHeadSpec, type DualEncoderConfig } from '../models/starter/head-spec.js';
import { readRun } from './runs.js';
import { isPackEntry } from '../models/model-source.js';

export const PACK_FORMAT = 'duo-starter-pack';

export { headGraph, textModelOnnx };

export function imageHeadOnnx(params: Params, config: DualEncoderConfig, norm: Params, storage: WeightStorage = {}): Uint8Array {
  const head = headGraph(params, 'image.head', imageHeadSpec(config), 'standardised', 'image_embeds', storage);
  return encodeModel({
    name: 'starter-image-head',
    nodes: [
      { op: 'Sub', inputs: ['features', 'feature_mean'], outputs: ['centred'] },
      { op: 'Div', inputs: ['centred', 'feature_std'], outputs: ['standardised'] },
      ...head.nodes,
    ],
    initializers: [
      { name: 'feature_mean', dims: [config.imageDim], type: 'float', data: norm.get('mean')! },
      { name: 'feature_std', dims: [config.imageDim], type: 'float', data: norm.get('std')! },
      ...head.initializers,
    ],
    inputs: [{ name: 'features', type: 'float', shape: ['batch', config.imageDim] }],
    outputs: [{ name: 'image_embeds', type: 'float', shape: ['batch', config.embedDim] }],
  });
}

interface PreviousManifest {
  crossEncoder?: unknown;
  openVocabulary?: unknown;
  queryBank?: { file?: unknown };
  ensemble?: { members?: { folder?: unknown }[] };
}

function readPreviousManifest(path: string): PreviousManifest {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as PreviousManifest;
  } catch (error) {
    throw createError('MODEL_UNSUPPORTED', path, `the pack folder's manifest is not JSON (${(error as Error).message}); move it away to export here`);
  }
}

/** `compact`: int8 word vectors and head matrices, float16 for the rest (text-graph.ts WeightStorage): about a quarter of the bytes, for a change in the third decimal of a cosine. */
export async function exportStarterPack(runDir: string, outDir: string, options: { compact?: boolean } = {}): Promise<void> {
  const storage: WeightStorage = { compact: options.compact };
  const run = readRun(runDir);
  if (!run.summary) throw createError('BAD_ARGUMENT', runDir, 'run has not finished (no summary.json)');
  const params = await loadTensors(join(runDir, 'best.bin'));
  const norm = await loadTensors(join(runDir, 'image-norm.bin'));
  const config = run.params.config as DualEncoderConfig;
  const vocab = JSON.parse(readFileSync(join(runDir, 'vocab.json'), 'utf8')) as string[];
  const backbone = resolve(String(run.params.backbone));
  if (!existsSync(backbone)) throw createError('FILE_NOT_FOUND', backbone);
  mkdirSync(outDir, { recursive: true }); // a new pack folder: the copy below does not create it
  const manifestPath = join(outDir, 'manifest.json');
  const previous = existsSync(manifestPath) ? readPreviousManifest(manifestPath) : undefined;
  if (resolve(join(outDir, 'backbone.onnx')) !== backbone) copyFileSync(backbone, join(outDir, 'backbone.onnx'));
  await writeFileAtomic(join(outDir, 'text_model.onnx'), textModelOnnx(params, config, undefined, storage));
  await writeFileAtomic(join(outDir, 'image_head.onnx'), imageHeadOnnx(params, config, norm, storage));
  await writeFileAtomic(join(outDir, 'vocab.json'), `${JSON.stringify(vocab)}\n`);
  const features = (run.params.hyper as { features?: FeatureKind }).features ?? 'pooled';
  const withMobilenet = needsMobilenet(features);
  const manifest = {
    format: PACK_FORMAT,
    version: 1,
    name: 'duo-starter',
    embedDim: config.embedDim,
    similarity: 'cosine',
    backbone: {
      file: 'backbone.onnx',
      source:
        `${BACKBONE_PACKAGE} models/centernet.json (COCO CenterNet, MobileNetV3)` +
        (withMobilenet ? ` and ${MOBILENET_PACKAGE} mobilenet_v2_mid (MobileNetV2 1.4, ImageNet)` : '') +
        ', converted to ONNX by src/models/starter/backbone.ts',
      outputs: `backbone_mean[480] + class_max[80]; grid[480x4x4] for stage 2${withMobilenet ? `; mobilenet_mean[${MOBILENET_DIM}]` : ''}`,
      sha256: sha256File(join(outDir, 'backbone.onnx')),
    },
    text: { file: 'text_model.onnx', vocabulary: 'vocab.json', vocabSize: config.vocabSize, wordDim: config.wordDim, tokenizer: 'lower-case [a-z0-9]+ words, unknown words dropped', encoder: config.textEncoder ?? { kind: 'pooled' } },
    imageHead: { file: 'image_head.onnx', inputDim: config.imageDim },
    features,
    ...(options.compact ? { weights: 'compact: word vectors int8 rows and head matrices int8 columns, each with float32 scales (read through DequantizeLinear), biases and GRU weights float16 (read through Cast); onnxruntime computes in float32' } : {}),
    head: config.head,
    hidden: config.head === 'mlp' ? config.hidden : undefined,
    training: {
      data: 'Flickr8k (Hodosh et al. 2013)',
      trainSplit: 'train (6000 images, 30000 captions)',
      chosenOn: 'dev',
      run: run.id,
      hyper: run.params.hyper,
      command: run.params.command,
      bestEpoch: run.summary.bestEpoch,
      epochsRun: run.summary.epochsRun,
      trainSeconds: run.summary.trainSeconds,
    },
    devMetrics: run.summary.bestDev,
    // the pack's cross-encoder is a model of its own (duo export-cross): a new bi-encoder keeps it
    ...(previous?.crossEncoder ? { crossEncoder: previous.crossEncoder } : {}),
  };
  await writeFileAtomic(join(outDir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  // an open vocabulary maps GloVe into the old text model's word space: stale now (duo open-vocab rebuilds it)
  if (previous?.openVocabulary) for (const f of ['open_vocab.bin', 'open_vocab.json']) rmSync(join(outDir, f), { force: true });
  // so does a query bank the old model embedded (duo query-bank writes a new one)
  const bank = previous?.queryBank?.file;
  if (isPackEntry(bank)) rmSync(join(outDir, bank), { force: true });
  // and members packed beside the old model (duo pack-members) were weighted against it: they go too
  for (const m of previous?.ensemble?.members ?? []) if (isPackEntry(m.folder)) rmSync(join(outDir, m.folder), { recursive: true, force: true });
}
