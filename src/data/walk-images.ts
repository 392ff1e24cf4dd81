import { readdir, stat } from 'node:fs/promises';
import { extname, join, relative, sep } from 'node:path';
import { createError } from '../errors.js';
import { IMAGE_EXTENSIONS } from './image-loader.js';

export interface ImageFile {
  /** path relative to the root, with forward slashes: the item's id */
  id: string;
  path: string;
  size: number;
  mtimeMs: number;
}

/** Every image under `root`, recursively, sorted by id; hidden folders and symlinked folders are skipped. */
export async function walkImages(root: string): Promise<ImageFile[]> {
  try {
    if (!(await stat(root)).isDirectory()) throw createError('BAD_ARGUMENT', root, 'is not a directory');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw createError('FILE_NOT_FOUND', root);
    throw error;
  }
  const out: ImageFile[] = [];
  const visit = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      if (entry.name.startsWith('.')) continue;
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await visit(path);
      else if ((entry.isFile() || entry.isSymbolicLink()) && IMAGE_EXTENSIONS.has(extname(entry.name).toLowerCase())) {
        const s = await stat(path).catch(() => undefined);
        if (s?.isFile()) out.push({ id: relative(root, path).split(sep).join('/'), path, size: s.size, mtimeMs: Math.floor(s.mtimeMs) });
      }
    }
  };
  await visit(root);
  return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
