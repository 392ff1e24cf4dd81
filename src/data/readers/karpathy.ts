/**
 * Karpathy's split files (`dataset_flickr8k.json`, `dataset_flickr30k.json`, `dataset_coco.json`):
 * `{images: [{filename, filepath?, split, sentences: [{raw}]}]}`. Split "val" is the dev split;
 * COCO's "restval" counts as train.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createError } from '../../errors.js';
import { checkDataset, type Caption, type RetrievalDataset } from '../dataset.js';

interface KarpathyImage {
  filename?: unknown;
  filepath?: unknown;
  split?: unknown;
  sentences?: { raw?: unknown }[];
}

export async function readKarpathy(jsonPath: string, imagesDir: string, split: string): Promise<RetrievalDataset> {
  let parsed: { images?: KarpathyImage[]; dataset?: string };
  try {
    parsed = JSON.parse(await readFile(jsonPath, 'utf8')) as typeof parsed;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw createError('FILE_NOT_FOUND', jsonPath);
    throw createError('DATASET_FORMAT', jsonPath, `not valid JSON (${(error as Error).message})`);
  }
  if (!Array.isArray(parsed.images)) throw createError('DATASET_FORMAT', jsonPath, 'no "images" array');
  const want = split === 'dev' ? 'val' : split;
  const images: RetrievalDataset['images'] = [];
  const captions: Caption[] = [];
  parsed.images.forEach((img, i) => {
    const s = img.split === 'restval' ? 'train' : img.split;
    if (s !== want) return;
    if (typeof img.filename !== 'string') throw createError('DATASET_FORMAT', jsonPath, `images[${i}].filename is not a string`);
    if (!Array.isArray(img.sentences)) throw createError('DATASET_FORMAT', jsonPath, `images[${i}].sentences is not an array`);
    const dir = typeof img.filepath === 'string' ? join(imagesDir, img.filepath) : imagesDir;
    images.push({ id: img.filename, source: join(dir, img.filename) });
    img.sentences.forEach((sent, j) => {
      if (typeof sent.raw !== 'string') throw createError('DATASET_FORMAT', jsonPath, `images[${i}].sentences[${j}].raw is not a string`);
      captions.push({ imageId: img.filename as string, text: sent.raw.trim() });
    });
  });
  try {
    return checkDataset({ name: parsed.dataset ?? 'karpathy', split, images, captions }, jsonPath);
  } catch (error) {
    throw createError('DATASET_FORMAT', jsonPath, (error as Error).message);
  }
}
