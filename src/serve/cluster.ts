/**
 * `duo serve --workers N`: N server processes (node:cluster) sharing one port, so N cores
 * answer at once (one process runs its models on a single JavaScript thread). The primary opens
 * no engine; it forks the workers, each a whole `duo serve` (engines, caches, /metrics of its
 * own), logs `ready` once every worker is ready, replaces a worker that dies (after a backoff
 * that grows while workers keep dying young), and on SIGTERM/SIGINT has every worker drain
 * its requests and close, then exits. A worker that dies before all are first ready stops the
 * whole server: that is a setting or an index that cannot work, not a crash to retry.
 */
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import { createError } from '../errors.js';

/** what a worker sends the primary once it listens */
export interface WorkerReady {
  duo: 'ready';
  url: string;
}

export const isWorkerReady = (m: unknown): m is WorkerReady => typeof m === 'object' && m !== null && (m as { duo?: unknown }).duo === 'ready';

/** --workers: a positive integer or `auto` (the number of CPUs) */
export function parseWorkers(v: string | undefined): number {
  if (v === undefined) return 1;
  if (v.trim() === 'auto') return availableParallelism();
  if (!/^\s*\d+\s*$/.test(v) || Number(v) < 1 || Number(v) > 256) throw createError('BAD_ARGUMENT', '--workers', `a number of processes from 1 to 256, or auto (got ${v})`);
  return Number(v);
}

export interface PrimaryOptions {
  workers: number;
  /** the least level the primary logs (pino's names, as --log-level; default info) */
  logLevel?: string;
  /** first restart delay; doubles for each worker that died young, up to maxBackoffMs */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** a worker that ran at least this long before dying resets the backoff */
  stableMs?: number;
}

const LEVELS: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity };
let least = LEVELS.info!;

/** One JSON line as the workers' logger (pino) writes them, so one parser reads both. */
function log(level: 'info' | 'warn' | 'error', msg: string, fields: object = {}): void {
  const levels = { info: 30, warn: 40, error: 50 };
  if (levels[level] < least) return;
  process.stdout.write(`${JSON.stringify({ level: levels[level], time: Date.now(), pid: process.pid, role: 'primary', ...fields, msg })}\n`);
}

/**
 * The primary's part: resolves once it has shut down (every worker exited after a signal);
 * rejects if a worker exits before all were ready.
 */
export function runPrimary(o: PrimaryOptions): Promise<void> {
  const backoffMs = o.backoffMs ?? 500;
  const maxBackoffMs = o.maxBackoffMs ?? 30_000;
  const stableMs = o.stableMs ?? 10_000;
  /** live workers and when each was forked */
  const live = new Map<Worker, number>();
  const ready = new Set<Worker>();
  const timers = new Set<NodeJS.Timeout>();
  let allReady = false;
  let stopping = false;
  let failure: Error | undefined;
  let youngDeaths = 0;
  least = LEVELS[o.logLevel ?? 'info'] ?? LEVELS.info!;

  return new Promise<void>((resolve, reject) => {
    const fork = () => {
      const w = cluster.fork();
      live.set(w, Date.now());
      w.on('message', (m: unknown) => {
        if (!isWorkerReady(m) || stopping) return;
        ready.add(w);
        log('info', 'worker ready', { worker: w.process.pid, url: m.url });
        if (!allReady && ready.size === o.workers) {
          allReady = true;
          log('info', 'ready', { url: m.url, workers: [...ready].map((x) => x.process.pid) });
        }
      });
    };

    const stopAll = () => {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const w of live.keys()) w.process.kill('SIGTERM');
    };

    /** once the last worker is gone after a stop */
    const settle = () => {
      if (live.size > 0) return;
      for (const s of ['SIGINT', 'SIGTERM'] as const) process.off(s, onSignal);
      cluster.off('exit', onExit);
      if (failure) reject(failure);
      else resolve();
    };

    const onExit = (w: Worker, code: number | null, signal: string | null) => {
      const born = live.get(w) ?? Date.now();
      live.delete(w);
      ready.delete(w);
      if (stopping) {
        log('info', 'worker closed', { worker: w.process.pid, code, signal });
        settle();
        return;
      }
      if (!allReady) {
        log('error', 'a worker failed while starting: stopping the others', { worker: w.process.pid, code, signal });
        failure = new Error(`duo serve --workers: a worker exited (code ${code}, signal ${signal}) before every worker was ready; its log says why`);
        stopping = true;
        stopAll();
        settle();
        return;
      }
      youngDeaths = Date.now() - born >= stableMs ? 0 : youngDeaths + 1;
      const delay = youngDeaths === 0 ? 0 : Math.min(maxBackoffMs, backoffMs * 2 ** (youngDeaths - 1));
      log('warn', 'worker died: replacing it', { worker: w.process.pid, code, signal, restartInMs: delay });
      const t = setTimeout(() => {
        timers.delete(t);
        if (!stopping) fork();
      }, delay);
      timers.add(t);
    };

    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) return;
      stopping = true;
      log('info', 'shutting down: every worker finishes the requests in flight', { signal });
      stopAll();
      settle();
    };

    for (const s of ['SIGINT', 'SIGTERM'] as const) process.on(s, onSignal);
    cluster.on('exit', onExit);
    for (let i = 0; i < o.workers; i++) fork();
  });
}
