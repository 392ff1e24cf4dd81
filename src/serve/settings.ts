/**
 * `duo serve`'s settings: where to listen, what to serve beside the index, caches, logging, and
 * the limits (./limits.ts). The config file's `serve:` section and the flags are checked by
 * this one schema; a flag wins over the file, and an error names whichever the user wrote.
 */
import { z } from 'zod';
import { flagOf, issueError } from '../search/options.js';
import { serveLimitsSchema, type ServeLimits } from './limits.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export const serveSettingsSchema = serveLimitsSchema.extend({
  host: z.string().min(1).default('127.0.0.1'),
  port: z.number().int().min(0).max(65_535).default(8080),
  /** a caption index for image→text */
  captions: z.string().min(1).optional(),
  /** where thumbnails are cached (default: <index>/../.duo-cache/thumbnails, or the system's temporary folder for a database) */
  cacheDir: z.string().min(1).optional(),
  /** the engines' embedding and response caches */
  cache: z.boolean().default(true),
  /** stage 2's stored rows kept in memory, in bytes (0: read from the index at every query) */
  stage2CacheBytes: z.number().int().min(0).max(64 * 2 ** 30).default(64 << 20),
  logLevel: z.enum(LOG_LEVELS).default('info'),
  /** how often an index folder is checked for a new commit, which is then served (0: never; ./index-reload.ts) */
  reloadIntervalMs: z.number().int().min(0).max(3_600_000).default(2_000),
});

export type ServeSettings = z.output<typeof serveSettingsSchema>;

/** The limits among settings (and anything else the caller holds). */
export const limitsOf = (s: ServeLimits): ServeLimits =>
  Object.fromEntries(Object.keys(serveLimitsSchema.shape).map((key) => [key, s[key as keyof ServeLimits]])) as unknown as ServeLimits;

/** The config file's section, then the flags given; errors name `--flag` or `<file>: serve.key`. */
export function parseSettings(fromFile: Record<string, unknown> | undefined, flags: Record<string, unknown>, file = 'config', flagName: (key: string) => string = flagOf): ServeSettings {
  const given = Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined));
  const fileKeys = new Set(Object.keys(fromFile ?? {}).filter((k) => !(k in given)));
  const result = serveSettingsSchema.safeParse({ ...fromFile, ...given });
  if (result.success) return result.data;
  throw issueError(result.error, (f) => (fileKeys.has(f) ? `${file}: serve.${f}` : flagName(f)));
}
