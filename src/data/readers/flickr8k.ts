/**
 * Flickr8k in its original layout: `Flickr8k.token.txt` (`IMAGE.jpg#K<TAB>caption`) and one
 * `Flickr_8k.<split>Images.txt` per split. Captions keep their original tokenisation.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createError } from '../../errors.js';
import { checkDataset, type Caption, type RetrievalDataset } from '../dataset.js';

export const FLICKR8K_TOKEN_FILE = 'Flickr8k.token.txt';

export function isFlickr8kDir(dir: string): boolean {
  return existsSync(join(dir, FLICKR8K_TOKEN_FILE));
}

export async function readFlickr8k(dir: string, split: string): Promise<RetrievalDataset> {
  const tokenPath = join(dir, FLICKR8K_TOKEN_FILE);
  const splitPath = join(dir, `Flickr_8k.${split}Images.txt`);
  if (!existsSync(tokenPath)) throw createError('FILE_NOT_FOUND', tokenPath);
  if (!existsSync(splitPath)) throw createError('DATASET_FORMAT', splitPath, `no such split file (split "${split}")`);
  const imagesDir = ['images', 'Flicker8k_Dataset', 'Flickr8k_Dataset'].map((d) => join(dir, d)).find(existsSync);
  if (!imagesDir) throw createError('DATASET_FORMAT', dir, 'no images/ folder');

  const names = (await readFile(splitPath, 'utf8')).split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
  const wanted = new Set(names);
  const captions: Caption[] = [];
  const lines = (await readFile(tokenPath, 'utf8')).split(/\r?\n/);
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    const tab = line.indexOf('\t');
    const hash = line.lastIndexOf('#', tab);
    if (tab < 0 || hash < 0) throw createError('DATASET_FORMAT', tokenPath, `line ${i + 1} is not "IMAGE#K<TAB>caption"`);
    const image = line.slice(0, hash);
    if (wanted.has(image)) captions.push({ imageId: image, text: line.slice(tab + 1).trim() });
  });
  const missing = names.find((n) => !existsSync(join(imagesDir, n)));
  if (missing) throw createError('DATASET_FORMAT', join(imagesDir, missing), `listed in ${splitPath} but missing`);
  try {
    return checkDataset(
      { name: 'flickr8k', split, images: names.map((n) => ({ id: n, source: join(imagesDir, n) })), captions },
      tokenPath,
    );
  } catch (error) {
    throw createError('DATASET_FORMAT', tokenPath, (error as Error).message);
  }
}
