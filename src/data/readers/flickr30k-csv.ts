/**
 * Flickr30k's `results.csv` (`image_name| comment_number| comment`, pipe-separated, header
 * first). The file has no splits: pass the image names of one (for example from a Karpathy
 * JSON) or take them all.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createError } from '../../errors.js';
import { checkDataset, type Caption, type RetrievalDataset } from '../dataset.js';

export async function readFlickr30kCsv(
  csvPath: string,
  imagesDir: string,
  options: { split?: string; imageNames?: string[] } = {},
): Promise<RetrievalDataset> {
  let text: string;
  try {
    text = await readFile(csvPath, 'utf8');
  } catch {
    throw createError('FILE_NOT_FOUND', csvPath);
  }
  const lines = text.split(/\r?\n/);
  const header = lines[0]?.split('|').map((s) => s.trim());
  if (!header || header[0] !== 'image_name' || header[2] !== 'comment') {
    throw createError('DATASET_FORMAT', csvPath, 'first line must be "image_name| comment_number| comment"');
  }
  const wanted = options.imageNames ? new Set(options.imageNames) : undefined;
  const captions: Caption[] = [];
  const order: string[] = [];
  const seen = new Set<string>();
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === '') continue;
    const first = line.indexOf('|');
    const second = line.indexOf('|', first + 1);
    if (first < 0 || second < 0) throw createError('DATASET_FORMAT', csvPath, `line ${i + 1} has fewer than 3 fields`);
    const image = line.slice(0, first).trim();
    if (wanted && !wanted.has(image)) continue;
    if (!seen.has(image)) {
      seen.add(image);
      order.push(image);
    }
    captions.push({ imageId: image, text: line.slice(second + 1).trim() });
  }
  try {
    return checkDataset(
      { name: 'flickr30k', split: options.split ?? 'all', images: order.map((n) => ({ id: n, source: join(imagesDir, n) })), captions },
      csvPath,
    );
  } catch (error) {
    throw createError('DATASET_FORMAT', csvPath, (error as Error).message);
  }
}
