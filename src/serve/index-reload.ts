/**
 * `duo serve` follows its index folder. When a writer commits (a `duo index` run over the same
 * folder: new photos, a nightly re-index), the server opens that commit as a new store beside
 * the one serving, warms it, and swaps engines between requests. Each request runs start to end
 * on the engine it began with (the search service and the routes take it once), so no request
 * mixes two commits, and none sees a half-built index: a commit is a manifest replaced
 * atomically over segment files already complete. The old store is closed after a grace period
 * longer than any request's time budget (its open files stay readable meanwhile even when the
 * writer's compaction deletes them).
 *
 * Polling, not fs.watch: a manifest is replaced by a rename, which inotify reports on the folder
 * but not on network file systems; one stat every couple of seconds costs nothing.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import { MANIFEST } from '../index/manifest.js';
import type { SearchEngine } from '../search/engine.js';

export interface FollowOptions {
  /** the index folder */
  location: string;
  intervalMs: number;
  /** how long a replaced engine stays open for the requests still running on it */
  graceMs: number;
  /** opens (and warms) an engine over the folder's current commit */
  open(): Promise<SearchEngine>;
  /** puts it in service; returns the engine it replaced */
  swap(engine: SearchEngine): SearchEngine;
  /** closes a replaced engine (what it alone owns: its store) */
  retire(engine: SearchEngine): Promise<void>;
  log: FastifyBaseLogger;
}

export interface IndexFollower {
  /** resolves once the commit on disk now is in service (tests, and a reload asked for) */
  check(): Promise<void>;
  /** stops polling and closes the replaced engines still in their grace period */
  stop(): Promise<void>;
}

/** The manifest's identity: a commit replaces the file, so its inode and mtime change. */
async function signature(location: string): Promise<string | undefined> {
  try {
    const s = await stat(join(location, MANIFEST));
    return `${s.ino}:${s.mtimeMs}:${s.size}`;
  } catch {
    return undefined; // the folder is being replaced or removed: keep serving what is open
  }
}

export async function followIndex(o: FollowOptions): Promise<IndexFollower> {
  let serving = await signature(o.location);
  let failedOn: string | undefined;
  let running: Promise<void> | undefined;
  const retiring = new Map<SearchEngine, NodeJS.Timeout>();
  let stopped = false;

  const reload = async (): Promise<void> => {
    const seen = await signature(o.location);
    if (stopped || seen === undefined || seen === serving) return;
    let next: SearchEngine;
    try {
      next = await o.open();
    } catch (error) {
      // a damaged or foreign commit is reported once and never served; the old one keeps answering
      if (failedOn !== seen) o.log.error({ err: error, index: o.location }, 'the index changed, but its new commit could not be opened: still serving the previous one');
      failedOn = seen;
      return;
    }
    if (stopped) {
      await o.retire(next);
      return;
    }
    const old = o.swap(next);
    serving = seen;
    failedOn = undefined;
    const timer = setTimeout(() => {
      retiring.delete(old);
      void o.retire(old).catch((error: unknown) => o.log.error({ err: error }, 'closing the replaced index failed'));
    }, o.graceMs);
    timer.unref();
    retiring.set(old, timer);
    const items = await next.store.count().catch(() => undefined);
    o.log.info({ index: o.location, items }, 'index changed: now serving its new commit');
  };
  const check = (): Promise<void> => (running ??= reload().finally(() => (running = undefined)));
  // reload() reports its own failures; nothing may escape a timer (an unhandled rejection ends the process)
  const poll = setInterval(() => void check().catch((error: unknown) => o.log.error({ err: error, index: o.location }, 'checking the index for a new commit failed')), o.intervalMs);
  poll.unref();

  return {
    check: async () => {
      await running;
      await check();
    },
    stop: async () => {
      stopped = true;
      clearInterval(poll);
      await running?.catch(() => {}); // already logged by the poller or thrown to check()'s caller
      for (const [engine, timer] of retiring) {
        clearTimeout(timer);
        await o.retire(engine);
      }
      retiring.clear();
    },
  };
}
