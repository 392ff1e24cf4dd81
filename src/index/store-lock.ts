/**
 * The index folder's write lock (one writer per index across processes, proper-lockfile) and
 * the refusal of a path that is a file (a format-1 index, or something else).
 */
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import lockfile from 'proper-lockfile';
import { createError } from '../errors.js';

export const LOCK = 'write.lock';

export interface Lock {
  release(): Promise<void>;
  /** set when another process took the lock over (ours went stale): this writer must not commit */
  lost(): Error | undefined;
}

export async function takeLock(path: string, dir: string): Promise<Lock> {
  let lost: Error | undefined;
  try {
    // stale after 10 s without an update (refreshed every 2 s): a killed writer does not block the next run for long
    const release = await lockfile.lock(dir, {
      lockfilePath: join(dir, LOCK),
      stale: 10_000,
      update: 2_000,
      retries: 0,
      realpath: false,
      // the default throws from a timer and kills the process; the next commit refuses instead
      onCompromised: (error) => {
        lost = error;
      },
    });
    return { release: () => (lost ? Promise.resolve() : release()), lost: () => lost };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ELOCKED') throw createError('INDEX_LOCKED', path);
    throw error;
  }
}

/** A path that is a file: an index of format 1 (one file), or something else. */
export async function refuseFile(path: string): Promise<never> {
  const handle = await open(path, 'r');
  const head = Buffer.alloc(8);
  try {
    await handle.read(head, 0, 8, 0);
  } finally {
    await handle.close();
  }
  if (head.toString('latin1') === 'DUOINDEX') {
    throw createError('INDEX_FORMAT', path, 'a format-1 index (one file, duo-search 0.1); indexes are folders now: convert it with `duo migrate <file> --index <new folder> [--reranker <dir>]`');
  }
  throw createError('INDEX_CORRUPT', path, 'not a duo index (an index is a folder with a manifest.json)');
}
