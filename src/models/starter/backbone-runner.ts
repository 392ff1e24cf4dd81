/**
 * Runs the converted backbone on onnxruntime-node. Images are resized to 512×512 ignoring
 * aspect ratio with bilinear filtering, as @vladmandic/human feeds CenterNet, RGB 0..255; a
 * backbone built with MobileNetV2 also gets the image at 224×224, as nsfwjs resizes it.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import type { DecodedImage } from '../../data/image-loader.js';
import { BACKBONE_DIM, BACKBONE_INPUT, CLASS_DIM, GRID, MOBILENET_DIM, MOBILENET_INPUT } from './backbone.js';
import { sessionOptions } from '../../util/ort-session.js';
import { resolveModelSource } from '../model-source.js';

export interface BackboneFeatures {
  /** backbone_mean (480) then class_max (80) */
  pooled: Float32Array;
  /** 480 × 4 × 4, channel-major */
  grid: Float32Array;
  /** MobileNetV2's pooled last block (1792), from a backbone built with it */
  mobilenet?: Float32Array;
}

export const POOLED_DIM = BACKBONE_DIM + CLASS_DIM;
export const GRID_SIZE = BACKBONE_DIM * GRID * GRID;

/**
 * What the image head reads: CenterNet's pooled vector alone, plus the per-channel max over
 * the 4×4 grid cells, plus the whole grid (spatial layout), MobileNetV2's pooled vector alone,
 * or both pooled vectors.
 */
export type FeatureKind = 'pooled' | 'pooled+gridmax' | 'pooled+grid' | 'mobilenet' | 'pooled+mobilenet';
export const FEATURE_KINDS: FeatureKind[] = ['pooled', 'pooled+gridmax', 'pooled+grid', 'mobilenet', 'pooled+mobilenet'];

/** Kinds that need a backbone built with MobileNetV2 (buildBackboneOnnx's `mobilenet`). */
export const needsMobilenet = (kind: FeatureKind): boolean => kind.includes('mobilenet');

export function featureDim(kind: FeatureKind): number {
  switch (kind) {
    case 'pooled':
      return POOLED_DIM;
    case 'pooled+gridmax':
      return POOLED_DIM + BACKBONE_DIM;
    case 'pooled+grid':
      return POOLED_DIM + GRID_SIZE;
    case 'mobilenet':
      return MOBILENET_DIM;
    case 'pooled+mobilenet':
      return POOLED_DIM + MOBILENET_DIM;
  }
}

export function featureVector(f: BackboneFeatures, kind: FeatureKind): Float32Array {
  if (kind === 'pooled') return f.pooled;
  if (needsMobilenet(kind) && !f.mobilenet) throw new Error(`image features "${kind}" need a backbone built with MobileNetV2 (this one has no mobilenet_nhwc input)`);
  if (kind === 'mobilenet') return f.mobilenet!;
  const out = new Float32Array(featureDim(kind));
  out.set(f.pooled);
  if (kind === 'pooled+mobilenet') out.set(f.mobilenet!, POOLED_DIM);
  else if (kind === 'pooled+grid') out.set(f.grid, POOLED_DIM);
  else {
    const cells = GRID * GRID;
    for (let c = 0; c < BACKBONE_DIM; c++) {
      let m = -Infinity;
      for (let k = 0; k < cells; k++) m = Math.max(m, f.grid[c * cells + k]!);
      out[POOLED_DIM + c] = m;
    }
  }
  return out;
}

/** Whether a starter pack's backbone.onnx has the MobileNetV2 branch (loads and releases it: about a second). */
export async function packHasMobilenet(pack: string): Promise<boolean> {
  const runner = await BackboneRunner.load(join(resolveModelSource(pack).location, 'backbone.onnx'));
  try {
    return runner.hasMobilenet;
  } finally {
    await runner.dispose();
  }
}

export class BackboneRunner {
  /** images this runner ran through the network (the others came from the image's memo) */
  computed = 0;

  /** whether this backbone was built with MobileNetV2 (features carry `mobilenet`) */
  readonly hasMobilenet: boolean;

  private constructor(
    private readonly session: ort.InferenceSession,
    /** SHA-256 of the ONNX bytes: runners of the same weights share features through the image */
    readonly weightsHash: string,
  ) {
    this.hasMobilenet = session.inputNames.includes('mobilenet_nhwc');
  }

  static async load(onnx: string | Uint8Array, threads = 0): Promise<BackboneRunner> {
    const bytes = typeof onnx === 'string' ? await readFile(onnx) : onnx;
    const session = await ort.InferenceSession.create(bytes, sessionOptions({ intraOpNumThreads: threads }));
    return new BackboneRunner(session, createHash('sha256').update(bytes).digest('hex'));
  }

  static async pixels(image: DecodedImage, size = BACKBONE_INPUT): Promise<Buffer> {
    return sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } })
      .resize(size, size, { fit: 'fill', kernel: 'linear' })
      .raw()
      .toBuffer();
  }

  /**
   * Features of each image. They are kept on the image (`derived`, under these weights' hash):
   * the starter encoder (stage 1) and the starter cross-encoder (stage 2) read the same backbone
   * outputs, so when both see the same decoded image, at index time or for a hybrid image
   * query, the backbone runs once, even when they ask at the same time.
   */
  async run(images: DecodedImage[], options: { signal?: AbortSignal } = {}): Promise<BackboneFeatures[]> {
    const key = `starter-backbone:${this.weightsHash}`;
    const todo = images.filter((img, i) => !img.derived?.has(key) && images.indexOf(img) === i);
    if (todo.length > 0) {
      options.signal?.throwIfAborted();
      const batch = this.compute(todo);
      todo.forEach((img, i) => {
        const features = batch.then((f) => f[i]!);
        const derived = (img.derived ??= new Map());
        derived.set(key, features);
        // a failed pass is not remembered: the next caller tries again
        features.catch(() => derived.get(key) === features && derived.delete(key));
      });
    }
    return Promise.all(images.map((img) => img.derived!.get(key) as Promise<BackboneFeatures>));
  }

  private async compute(images: DecodedImage[]): Promise<BackboneFeatures[]> {
    if (images.length === 0) return [];
    this.computed += images.length;
    const batch = async (side: number) => {
      const size = side * side * 3;
      const input = new Float32Array(images.length * size);
      const pixels = await Promise.all(images.map((img) => BackboneRunner.pixels(img, side)));
      pixels.forEach((p, i) => {
        for (let j = 0; j < size; j++) input[i * size + j] = p[j]!;
      });
      return new ort.Tensor('float32', input, [images.length, side, side, 3]);
    };
    const feeds: Record<string, ort.Tensor> = { input_nhwc: await batch(BACKBONE_INPUT) };
    if (this.hasMobilenet) feeds.mobilenet_nhwc = await batch(MOBILENET_INPUT);
    const out = await this.session.run(feeds);
    const mean = out.backbone_mean!.data as Float32Array;
    const cls = out.class_max!.data as Float32Array;
    const grid = out.grid!.data as Float32Array;
    const mobilenet = out.mobilenet_mean?.data as Float32Array | undefined;
    return images.map((_, i) => {
      const pooled = new Float32Array(POOLED_DIM);
      pooled.set(mean.subarray(i * BACKBONE_DIM, (i + 1) * BACKBONE_DIM));
      pooled.set(cls.subarray(i * CLASS_DIM, (i + 1) * CLASS_DIM), BACKBONE_DIM);
      const f: BackboneFeatures = { pooled, grid: grid.slice(i * GRID_SIZE, (i + 1) * GRID_SIZE) };
      if (mobilenet) f.mobilenet = mobilenet.slice(i * MOBILENET_DIM, (i + 1) * MOBILENET_DIM);
      return f;
    });
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}
