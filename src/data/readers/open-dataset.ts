/** One entry point for `eval --data`: picks the reader from what the path holds. */
import { existsSync, statSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createError } from '../../errors.js';
import type { RetrievalDataset } from '../dataset.js';
import { readFlickr30kCsv } from './flickr30k-csv.js';
import { isFlickr8kDir, readFlickr8k } from './flickr8k.js';
import { readHfParquet } from './hf-parquet.js';
import { readKarpathy } from './karpathy.js';

export interface OpenDatasetOptions {
  split: string;
  /** where image files live, for CSV and Karpathy JSON (default: `images/` beside the file) */
  imagesDir?: string;
}

export async function openDataset(path: string, options: OpenDatasetOptions): Promise<RetrievalDataset> {
  if (!existsSync(path)) throw createError('FILE_NOT_FOUND', path);
  const imagesDir = options.imagesDir ?? join(dirname(path), 'images');
  if (statSync(path).isDirectory()) {
    if (isFlickr8kDir(path)) return readFlickr8k(path, options.split);
    const parquet = (await readdir(path)).filter((f) => f.endsWith('.parquet')).sort();
    const inSplit = parquet.filter((f) => f.startsWith(options.split));
    if (parquet.length > 0) return readHfParquet((inSplit.length > 0 ? inSplit : parquet).map((f) => join(path, f)), options.split);
    if (existsSync(join(path, 'results.csv'))) return openDataset(join(path, 'results.csv'), options);
    throw createError('DATASET_FORMAT', path, 'no Flickr8k token file, parquet files or results.csv in this folder');
  }
  if (path.endsWith('.csv')) {
    if (options.split !== 'all') throw createError('BAD_ARGUMENT', '--split', `${path} has no splits: use --split all, or a Karpathy JSON`);
    return readFlickr30kCsv(path, imagesDir, { split: 'all' });
  }
  if (path.endsWith('.json')) return readKarpathy(path, imagesDir, options.split);
  if (path.endsWith('.parquet')) return readHfParquet([path], options.split);
  throw createError('DATASET_FORMAT', path, 'unknown layout (expected a Flickr8k folder, .csv, .json or .parquet)');
}
