/**
 * The YAML config (`--config duo.yaml`, or ./duo.yaml when present). Its `search:` section is
 * checked by the engine's one option schema (src/search/options.ts), so an unknown key, a wrong
 * type or a value out of range is reported with its key path; a flag on the command line wins.
 */
import { existsSync, readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { z } from 'zod';
import { createError } from '../errors.js';
import { flagOf, issueError, parseSearchOptions, type SearchOptions } from '../search/options.js';

const fileSchema = z
  .object({
    index: z.string(),
    model: z.string(),
    reranker: z.string(),
    search: z.record(z.string(), z.unknown()),
    /** `duo serve`'s settings, checked by the server's own schema (src/serve/settings.ts) */
    serve: z.record(z.string(), z.unknown()),
  })
  .strict()
  .partial();

export interface EngineConfig {
  index?: string;
  model?: string;
  reranker?: string;
  /** the search options exactly as written (validated; defaults are filled only when merged with flags) */
  search?: Record<string, unknown>;
  /** `duo serve`'s section as written (validated by the serve command) */
  serve?: Record<string, unknown>;
  /** the file it came from, to name it in errors */
  file?: string;
}

export function parseConfig(text: string, where: string): EngineConfig {
  let raw: unknown;
  try {
    raw = parse(text) ?? {};
  } catch (error) {
    throw createError('BAD_ARGUMENT', where, `not valid YAML (${(error as Error).message.split('\n')[0]})`);
  }
  const result = fileSchema.safeParse(raw);
  if (!result.success) throw issueError(result.error, (f) => `${where}: ${f}`);
  if (result.data.search) parseSearchOptions(result.data.search, (f) => `${where}: search.${f}`);
  return { ...result.data, file: where };
}

export function loadConfig(path: string | undefined): EngineConfig {
  if (!path) return existsSync('duo.yaml') ? parseConfig(readFileSync('duo.yaml', 'utf8'), 'duo.yaml') : {};
  if (!existsSync(path)) throw createError('FILE_NOT_FOUND', path);
  return parseConfig(readFileSync(path, 'utf8'), path);
}

/** Config file values, then flags (a flag given on the command line wins); errors name the flag. */
export function searchOptions(config: EngineConfig, flags: Record<string, unknown>): SearchOptions {
  const defined = Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined));
  const fromFile = new Set(Object.keys(config.search ?? {}).filter((k) => !(k in defined)));
  return parseSearchOptions({ ...config.search, ...defined }, (f) => (fromFile.has(f) ? `${config.file}: search.${f}` : flagOf(f)));
}
