/**
 * Images and thumbnails, by id only: an id is looked up in the store first, and only an id the
 * index holds becomes a file path (under the index's root, and checked to stay there); no
 * client string is ever joined to a path. Thumbnails are rendered by sharp at sizes from a
 * fixed list and cached on disk under names hashed from the id, the size and the file's
 * recorded size and mtime (a changed photo gets a new thumbnail).
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { extname, join, relative, resolve, sep } from 'node:path';
import sharp from 'sharp';
import { createError } from '../errors.js';
import type { VectorStore } from '../index/vector-store.js';
import { ApiError } from './errors.js';

/** Throws a 404 naming no server path when an indexed file is gone from disk. */
export async function exists(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    throw new ApiError(404, 'FILE_NOT_FOUND', 'the indexed image file is gone from disk (re-run duo index)', 'id');
  }
}

export const CONTENT_TYPES: Record<string, string> = {
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.png': 'image/png',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
  '.avif': 'image/avif',
  '.tif': 'image/tiff',
  '.tiff': 'image/tiff',
  '.heic': 'image/heic',
};

export interface ImageFile {
  path: string;
  contentType: string;
  /** what the index recorded of the file: its size and mtime, for ETags and cache names */
  version: string;
}

export class ImageFiles {
  private readonly inFlight = new Map<string, Promise<Buffer>>();

  constructor(
    /** the store in service now (`duo serve` swaps it when the index gets a new commit) */
    private readonly storeNow: () => VectorStore,
    private readonly cacheDir: string,
  ) {}

  /** The file of an indexed image; ITEM_NOT_FOUND for an id the index does not hold. */
  async file(id: string): Promise<ImageFile> {
    const store = this.storeNow();
    const { info } = store;
    if (info.items !== 'images') throw createError('ITEM_NOT_FOUND', id, `${store.location} (a caption index holds no images)`);
    const [item] = await store.get([id]);
    if (!item) throw createError('ITEM_NOT_FOUND', id, store.location);
    const root = resolve(info.root);
    const path = resolve(root, id);
    const inside = relative(root, path);
    // an index holds ids relative to its root; one that climbs out of it is refused, whatever wrote it
    if (inside === '' || inside.startsWith(`..${sep}`) || inside === '..' || resolve(root, inside) !== path) throw createError('ITEM_NOT_FOUND', id, store.location);
    const m = item.metadata;
    return { path, contentType: CONTENT_TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream', version: `${m.bytes ?? ''}-${m.mtimeMs ?? ''}` };
  }

  /** A WebP thumbnail whose longest edge is `size` (never enlarged), from the disk cache or rendered once. */
  async thumbnail(id: string, size: number): Promise<{ data: Buffer; version: string }> {
    const file = await this.file(id);
    const key = createHash('sha256').update(`${id}\0${size}\0${file.version}`).digest('hex');
    const cached = join(this.cacheDir, key.slice(0, 2), `${key}.webp`);
    let work = this.inFlight.get(key);
    if (!work) {
      work = this.render(file.path, cached, size).finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, work);
    }
    return { data: await work, version: `${key.slice(0, 16)}` };
  }

  private async render(source: string, cached: string, size: number): Promise<Buffer> {
    try {
      return await readFile(cached);
    } catch {
      // not cached yet
    }
    await exists(source);
    const data = await sharp(source, { failOn: 'none' }).rotate().resize(size, size, { fit: 'inside', withoutEnlargement: true }).webp({ quality: 78 }).toBuffer();
    await mkdir(join(cached, '..'), { recursive: true });
    const temporary = `${cached}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    await writeFile(temporary, data);
    await rename(temporary, cached); // atomic: a reader sees the whole file or none
    return data;
  }
}
