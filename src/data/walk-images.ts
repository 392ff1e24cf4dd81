import { readdir, stat } from 'node:fs/promises';
import { extname, join, relative, sep } from 'node:path';
import { createError } from '../errors.js';
import { IMAGE_EXTENSIONS, UNREADABLE } from './image-loader.js';

export interface ImageFile {
  /** path relative to the root, with forward slashes: the item's id */
  id: string;
  path: string;
  size: number;
  mtimeMs: number;
}

/** An image-named entry or a folder the walk could not read, with the reason. */
export interface SkippedEntry {
  /** like an ImageFile's id; a folder's ends with "/" */
  id: string;
  error: string;
}

/**
 * Every image under `root`, recursively, sorted by id; hidden folders and symlinked folders are
 * skipped. A folder that cannot be read, and a symbolic link named like an image that leads
 * nowhere (a loop, a missing target), are passed to `onSkip` with the reason and left out, so
 * one bad entry neither stops an indexing run nor disappears from its report.
 */
export async function walkImages(root: string, onSkip: (skipped: SkippedEntry) => void = () => {}): Promise<ImageFile[]> {
  try {
    if (!(await stat(root)).isDirectory()) throw createError('BAD_ARGUMENT', root, 'is not a directory');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw createError('FILE_NOT_FOUND', root);
    if (code && UNREADABLE[code]) throw createError('BAD_ARGUMENT', root, UNREADABLE[code]);
    throw error;
  }
  const out: ImageFile[] = [];
  const idOf = (path: string) => relative(root, path).split(sep).join('/');
  const visit = async (dir: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (!code || !UNREADABLE[code]) throw error;
      if (dir === root) throw createError('BAD_ARGUMENT', root, `cannot be read: ${UNREADABLE[code]}`);
      onSkip({ id: `${idOf(dir)}/`, error: `cannot read folder ${dir}: ${code === 'ENOENT' ? 'it was removed' : UNREADABLE[code]}` });
      return;
    }
    for (const entry of entries) {
      if (entry.name.startsWith('.')) continue;
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await visit(path);
      else if ((entry.isFile() || entry.isSymbolicLink()) && IMAGE_EXTENSIONS.has(extname(entry.name).toLowerCase())) {
        const s = await stat(path).catch((error: NodeJS.ErrnoException) => {
          // a regular file removed since readdir is simply gone; a link that leads nowhere is reported
          const why = error.code ? UNREADABLE[error.code] : undefined;
          if (entry.isSymbolicLink() && why) onSkip({ id: idOf(path), error: `cannot read image ${path}: ${why}` });
          return undefined;
        });
        if (s?.isFile()) out.push({ id: idOf(path), path, size: s.size, mtimeMs: Math.floor(s.mtimeMs) });
      }
    }
  };
  await visit(root);
  return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
