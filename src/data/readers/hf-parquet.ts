/**
 * Hugging Face parquet exports in the lmms-lab/flickr30k layout: one row per image with the
 * encoded image as `image: {bytes, path}`, its captions as a list in `caption`, and a
 * `filename`. Images stay in memory as bytes and are decoded by the same loader as files.
 */
import { asyncBufferFromFile, parquetReadObjects } from 'hyparquet';
import { createError } from '../../errors.js';
import { checkDataset, type Caption, type RetrievalDataset } from '../dataset.js';

type Row = Record<string, unknown>;

export async function readHfParquet(paths: string[], split = 'test'): Promise<RetrievalDataset> {
  const images: RetrievalDataset['images'] = [];
  const captions: Caption[] = [];
  for (const path of paths) {
    let rows: Row[];
    try {
      // utf8: false keeps un-annotated BYTE_ARRAY columns (the image bytes) as bytes; STRING columns stay strings
      rows = (await parquetReadObjects({ file: await asyncBufferFromFile(path), utf8: false })) as Row[];
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw createError('FILE_NOT_FOUND', path);
      throw createError('DATASET_FORMAT', path, `not a readable parquet file (${(error as Error).message})`);
    }
    rows.forEach((row, i) => {
      const image = row.image as { bytes?: unknown; path?: unknown } | undefined;
      if (!image || !(image.bytes instanceof Uint8Array)) {
        throw createError('DATASET_FORMAT', path, `row ${i}: column "image" has no bytes`);
      }
      const id = typeof row.filename === 'string' ? row.filename : typeof image.path === 'string' ? image.path : `${path}#${i}`;
      const list = row.caption ?? row.captions;
      if (!Array.isArray(list) || list.some((c) => typeof c !== 'string')) {
        throw createError('DATASET_FORMAT', path, `row ${i}: column "caption" is not a list of strings`);
      }
      images.push({ id, source: image.bytes });
      for (const text of list as string[]) captions.push({ imageId: id, text: text.trim() });
    });
  }
  try {
    return checkDataset({ name: 'hf-parquet', split, images, captions }, paths.join(', '));
  } catch (error) {
    throw createError('DATASET_FORMAT', paths.join(', '), (error as Error).message);
  }
}
