/**
 * A caption collection to search by image (image→text): a .txt file with one caption per
 * line (ids `line-N`), or a .jsonl file of {"id", "text", …} objects whose other scalar fields
 * are kept as metadata for filters. Blank lines are skipped; a bad line names its number.
 */
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { createError } from '../errors.js';
import type { RetrievalDataset } from './dataset.js';

export interface CaptionItem {
  id: string;
  text: string;
  meta?: Record<string, string | number | boolean>;
}

export async function readCaptionFile(path: string): Promise<CaptionItem[]> {
  let raw: string;
  try {
    raw = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw createError('FILE_NOT_FOUND', path);
    throw error;
  }
  const lines = raw.split(/\r?\n/);
  const ext = extname(path).toLowerCase();
  const items: CaptionItem[] = [];
  if (ext === '.txt') {
    lines.forEach((line, i) => line.trim() && items.push({ id: `line-${i + 1}`, text: line.trim() }));
  } else if (ext === '.jsonl') {
    lines.forEach((line, i) => {
      if (!line.trim()) return;
      let row: unknown;
      try {
        row = JSON.parse(line);
      } catch {
        throw createError('DATASET_FORMAT', path, `line ${i + 1} is not valid JSON`);
      }
      const r = row as Record<string, unknown>;
      if (typeof r !== 'object' || r === null || typeof r.text !== 'string' || !r.text.trim()) throw createError('DATASET_FORMAT', path, `line ${i + 1} has no "text" string`);
      const id = r.id === undefined ? `line-${i + 1}` : String(r.id);
      const meta = Object.fromEntries(Object.entries(r).filter(([k, v]) => k !== 'id' && k !== 'text' && ['string', 'number', 'boolean'].includes(typeof v))) as CaptionItem['meta'];
      items.push({ id, text: r.text.trim(), ...(meta && Object.keys(meta).length > 0 ? { meta } : {}) });
    });
  } else throw createError('DATASET_FORMAT', path, 'a caption collection is a .txt (one caption per line) or .jsonl ({"id", "text"} per line) file');
  if (items.length === 0) throw createError('DATASET_FORMAT', path, 'holds no captions');
  const seen = new Set<string>();
  for (const item of items) {
    if (seen.has(item.id)) throw createError('DATASET_FORMAT', path, `duplicate id "${item.id}"`);
    seen.add(item.id);
  }
  return items;
}

/** A dataset's captions as a collection: ids `<image>#<n>`, numbered within their image, the image kept as metadata. */
export function datasetCaptions(ds: RetrievalDataset): CaptionItem[] {
  const seen = new Map<string, number>();
  return ds.captions.map((c) => {
    const n = seen.get(c.imageId) ?? 0;
    seen.set(c.imageId, n + 1);
    return { id: `${c.imageId}#${n}`, text: c.text, meta: { image: c.imageId } };
  });
}
