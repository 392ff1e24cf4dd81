import type { Command } from 'commander';
import cluster from 'node:cluster';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createError } from '../../errors.js';
import { flagOf } from '../../search/options.js';
import { parseWorkers, runPrimary } from '../../serve/cluster.js';
import { startServer } from '../../serve/server.js';
import { parseSettings } from '../../serve/settings.js';
import { packageRoot } from '../../util/package-root.js';
import { loadConfig } from '../config.js';

interface ServeFlags {
  index?: string;
  captions?: string;
  port?: string;
  host?: string;
  config?: string;
  model?: string;
  reranker?: string;
  cacheDir?: string;
  cache?: boolean;
  stage2CacheBytes?: string;
  logLevel?: string;
  reloadIntervalMs?: string;
  maxK?: string;
  maxK1?: string;
  maxOffset?: string;
  maxQueryChars?: string;
  bodyLimit?: string;
  uploadLimit?: string;
  maxPixels?: string;
  queueConcurrency?: string;
  queueLength?: string;
  onOverload?: string;
  retryAfter?: string;
  requestBudgetMs?: string;
  workers?: string;
}

/** a number flag as typed: the schema reports a non-number under the flag's name */
const num = (v: string | undefined) => (v === undefined ? undefined : /^\s*-?\d+(\.\d+)?\s*$/.test(v) ? Number(v) : v);
const isUrl = (location: string) => /^[a-z][a-z0-9+.-]*:\/\//i.test(location);
/** settings whose flag is spelt shorter than the key */
const FLAGS: Record<string, string> = { bodyLimitBytes: '--body-limit', uploadLimitBytes: '--upload-limit', maxImagePixels: '--max-pixels', retryAfterS: '--retry-after', cache: '--no-cache' };

function version(): string {
  try {
    return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '0';
  }
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('serve an index over HTTP: the JSON API (/v1/…, described at /openapi.json), Prometheus /metrics and the web page')
    .option('--index <path|url>', 'index folder or database URL (or `index:` in the config)')
    .option('--captions <index>', 'also serve this caption index for image→text (POST /v1/captions/search)')
    .option('--port <n>', 'port (default 8080; 0: any free one)')
    .option('--host <address>', 'address to listen on (default 127.0.0.1)')
    .option('--config <file>', 'YAML config (default: ./duo.yaml if present); its serve: section holds these settings')
    .option('--model <idOrDir>', 'model to query with (default: the one that built the index)')
    .option('--reranker <dir|none>', "cross-encoder (default: the one the index recorded; none: stage 1 only)")
    .option('--cache-dir <dir>', 'thumbnail cache folder (default: .duo-cache/thumbnails beside the index)')
    .option('--no-cache', "turn off the engines' embedding and response caches")
    .option('--stage2-cache-bytes <n>', "stage 2's stored rows kept in memory (default 64 MiB; 0: read from the index at every query)")
    .option('--reload-interval-ms <ms>', 'check the index folder this often for a new commit (a `duo index` run) and serve it (default 2000; 0: never)')
    .option('--log-level <level>', 'fatal, error, warn, info (default), debug, trace or silent')
    .option('--max-k <n>', 'most results a request may ask for (default 100)')
    .option('--max-k1 <n>', 'most stage-2 candidates a request may ask for (default 1000)')
    .option('--max-offset <n>', 'deepest page offset (default 10000)')
    .option('--max-query-chars <n>', 'longest text query (default 500)')
    .option('--body-limit <bytes>', 'largest JSON body (default 65536)')
    .option('--upload-limit <bytes>', 'largest uploaded image file (default 16 MiB)')
    .option('--max-pixels <n>', 'largest uploaded image in pixels (default 40,000,000)')
    .option('--queue-concurrency <n>', 'model work (stage 2, image queries) running at once (default 4)')
    .option('--queue-length <n>', 'model work waiting; beyond it, overload (default 64)')
    .option('--on-overload <what>', 'reject (503 + Retry-After, the default) or stage1 (stage-1 results, marked)')
    .option('--retry-after <s>', "a 503's Retry-After in seconds (default 1)")
    .option('--request-budget-ms <ms>', "a request's whole time budget (default 10000)")
    .option(
      '--workers <n|auto>',
      'server processes sharing the port (default 1; auto: one per CPU). Each worker loads its own models, so memory grows with N; ' +
        'caches, limits (--queue-*) and /metrics are per worker (a scrape sees the one that answered, named by the duo-worker header). ' +
        'A worker that dies is replaced; SIGTERM/SIGINT drain them all',
    )
    .action(async (flags: ServeFlags) => {
      const config = loadConfig(flags.config);
      const index = flags.index ?? config.index;
      if (!index) throw createError('BAD_ARGUMENT', '--index', 'required (or set index: in the config)');
      if (!isUrl(index) && !existsSync(index)) throw createError('FILE_NOT_FOUND', index);
      const settings = parseSettings(
        config.serve,
        {
          captions: flags.captions,
          port: num(flags.port),
          host: flags.host,
          cacheDir: flags.cacheDir,
          // commander sets cache: true unless --no-cache: only its absence is a choice
          cache: flags.cache === false ? false : undefined,
          stage2CacheBytes: num(flags.stage2CacheBytes),
          logLevel: flags.logLevel,
          reloadIntervalMs: num(flags.reloadIntervalMs),
          maxK: num(flags.maxK),
          maxK1: num(flags.maxK1),
          maxOffset: num(flags.maxOffset),
          maxQueryChars: num(flags.maxQueryChars),
          bodyLimitBytes: num(flags.bodyLimit),
          uploadLimitBytes: num(flags.uploadLimit),
          maxImagePixels: num(flags.maxPixels),
          queueConcurrency: num(flags.queueConcurrency),
          queueLength: num(flags.queueLength),
          onOverload: flags.onOverload,
          retryAfterS: num(flags.retryAfter),
          requestBudgetMs: num(flags.requestBudgetMs),
        },
        config.file,
        (key) => FLAGS[key] ?? flagOf(key),
      );
      if (settings.captions && !isUrl(settings.captions) && !existsSync(settings.captions)) throw createError('FILE_NOT_FOUND', settings.captions);
      const workers = parseWorkers(flags.workers);
      if (workers > 1 && cluster.isPrimary) {
        // the primary opens nothing: it forks workers that run this same command line
        await runPrimary({ workers, logLevel: settings.logLevel });
        return;
      }
      const worker = cluster.isWorker;
      try {
        const server = await startServer({ ...settings, index, model: flags.model ?? config.model, reranker: flags.reranker ?? config.reranker, version: version(), worker });
        await server.closed;
      } finally {
        // the IPC channel to the primary would keep a closed (or failed) worker alive; not
        // disconnect(): a cluster worker exits 0 on it at once, before the CLI sets its status
        if (worker) process.channel?.unref();
      }
    });
}
