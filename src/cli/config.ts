/**
 * The engine's YAML config (`--config duo.yaml`), validated by zod so an unknown key, a
 * wrong type or a value out of range is reported with its key path. Every option can also
 * be given as a CLI flag, which wins.
 */
import { existsSync, readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { z } from 'zod';
import { createError } from '../errors.js';
import type { SearchOptions } from '../search/engine.js';

const searchSchema = z
  .object({
    mode: z.enum(['stage1', 'hybrid']),
    k1: z.number().int().min(1).max(10_000),
    k2: z.number().int().min(1).max(10_000),
    fusion: z.enum(['replace', 'weighted', 'rrf']),
    alpha: z.number().min(0).max(1),
    rrfK: z.number().min(0),
    normalisation: z.enum(['robust', 'minmax']),
    mmrLambda: z.number().gt(0).max(1),
    budgetMs: z.number().positive(),
    rerankBatchSize: z.number().int().min(1),
    where: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])),
  })
  .strict()
  .partial();

export const configSchema = z
  .object({
    index: z.string(),
    model: z.string(),
    head: z.string(),
    reranker: z.string(),
    search: searchSchema,
  })
  .strict()
  .partial();

export type EngineConfig = z.infer<typeof configSchema>;

export function parseConfig(text: string, where: string): EngineConfig {
  let raw: unknown;
  try {
    raw = parse(text) ?? {};
  } catch (error) {
    throw createError('BAD_ARGUMENT', where, `not valid YAML (${(error as Error).message.split('\n')[0]})`);
  }
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const keys = issue.code === 'unrecognized_keys' ? (issue as { keys: string[] }).keys : [];
    const path = [...issue.path, ...keys.slice(0, 1)].join('.');
    throw createError('BAD_ARGUMENT', `${where}: ${path || '(top level)'}`, issue.code === 'unrecognized_keys' ? 'unknown key' : issue.message);
  }
  return result.data;
}

export function loadConfig(path: string | undefined): EngineConfig {
  if (!path) return existsSync('duo.yaml') ? parseConfig(readFileSync('duo.yaml', 'utf8'), 'duo.yaml') : {};
  if (!existsSync(path)) throw createError('FILE_NOT_FOUND', path);
  return parseConfig(readFileSync(path, 'utf8'), path);
}

/** Config file values, then flags: a flag given on the command line wins. */
export function searchOptions(config: EngineConfig, flags: Partial<SearchOptions>): Partial<SearchOptions> {
  const defined = Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined));
  const merged = { ...config.search, ...defined };
  const checked = searchSchema.safeParse(merged);
  if (!checked.success) {
    const issue = checked.error.issues[0]!;
    throw createError('BAD_ARGUMENT', `--${String(issue.path[0] ?? '')}`, issue.message);
  }
  return checked.data as Partial<SearchOptions>;
}
