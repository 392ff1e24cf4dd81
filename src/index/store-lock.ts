/**
 * The index folder's write lock (one writer per index across processes, proper-lockfile) and
 * the refusal of a path that is a file (a format-1 index, or something else).
 */
import { open, readFile, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import lockfile from 'proper-lockfile';
import { createError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic-write.js';

export const LOCK = 'write.lock';
/** who holds the lock (pid and host), so the next writer can tell a killed holder from a live one */
export const LOCK_OWNER = 'write.lock.owner';

export interface Lock {
  release(): Promise<void>;
  /** set when another process took the lock over (ours went stale): this writer must not commit */
  lost(): Error | undefined;
}

export async function takeLock(path: string, dir: string): Promise<Lock> {
  let lost: Error | undefined;
  const options = {
    lockfilePath: join(dir, LOCK),
    // stale after 10 s without an update (refreshed every 2 s): a holder that hangs does not block the next run for long
    stale: 10_000,
    update: 2_000,
    retries: 0,
    realpath: false,
    // the default throws from a timer and kills the process; the next commit refuses instead
    onCompromised: (error: Error) => {
      lost = error;
    },
  };
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(dir, options);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ELOCKED') throw error;
    // a holder killed outright (SIGKILL, the OOM killer) leaves its lock for 10 s: when it is
    // provably dead (same host, no such process), the lock is taken over at once so a rerun resumes
    if (!(await holderIsDead(dir))) throw createError('INDEX_LOCKED', path);
    await rm(join(dir, LOCK), { recursive: true, force: true });
    release = await lockfile.lock(dir, options).catch((again: NodeJS.ErrnoException) => {
      throw again.code === 'ELOCKED' ? createError('INDEX_LOCKED', path) : again;
    });
  }
  await writeFileAtomic(join(dir, LOCK_OWNER), JSON.stringify({ pid: process.pid, host: hostname() }));
  // proper-lockfile notices a takeover only at its next update (2 s): the owner file tells at once
  const isLost = () => lost ?? (ownerPid(dir) === process.pid ? undefined : new Error(`${LOCK_OWNER} names another process`));
  return {
    release: async () => {
      // a lock taken over is the new holder's: leave it alone
      if (isLost()) return;
      await rm(join(dir, LOCK_OWNER), { force: true });
      await release();
    },
    lost: isLost,
  };
}

function ownerPid(dir: string): unknown {
  try {
    return (JSON.parse(readFileSync(join(dir, LOCK_OWNER), 'utf8')) as { pid?: unknown }).pid;
  } catch {
    return undefined;
  }
}

/**
 * True when the lock's recorded holder ran on this host and no longer exists. Anything unsure
 * (no owner file, another host, a process we may not signal) counts as alive: the lock then
 * goes stale after 10 s as before. A reused pid only makes us wait, never take a live lock.
 * Left open: the microseconds between a new holder taking the lock and writing its owner file,
 * when a dead predecessor's file is still there (proper-lockfile's own stale takeover has the
 * same kind of window).
 */
async function holderIsDead(dir: string): Promise<boolean> {
  let owner: { pid?: unknown; host?: unknown };
  try {
    owner = JSON.parse(await readFile(join(dir, LOCK_OWNER), 'utf8')) as typeof owner;
  } catch {
    return false;
  }
  if (owner.host !== hostname() || !Number.isInteger(owner.pid) || owner.pid === process.pid) return false;
  try {
    process.kill(owner.pid as number, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
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
