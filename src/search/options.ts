/**
 * The one schema of search options, with their defaults: the CLI flags, the config file's
 * `search:` section, the engine and the HTTP API all validate through it, so a bad value is
 * reported the same way everywhere, under the name the user typed (`--k`, `search.k`, `k`).
 */
import { z } from 'zod';
import { createError, type DuoError } from '../errors.js';
import { filterSchema } from '../index/filter.js';
import type { CrossEncoder, RerankDirection } from '../models/reranker.js';

export const MODES = ['stage1', 'hybrid'] as const;
export const FUSIONS = ['replace', 'weighted', 'rrf'] as const;
export const NORMALISATIONS = ['robust', 'minmax'] as const;

/**
 * Hard caps of the schema. They are wide so evaluation can rank whole splits (k = every item);
 * an HTTP server sets its own, lower caps per request.
 */
export const LIMITS = { k: 1_000_000, k1: 1_000_000, offset: 1_000_000, queryChars: 2_000 } as const;

/** The weighted-fusion α when none is given: the cross-encoder's own for the direction (chosen on dev), else 0.5. */
export const defaultAlpha = (reranker: Pick<CrossEncoder, 'fusionAlpha'> | undefined, direction: RerankDirection): number => reranker?.fusionAlpha?.[direction] ?? 0.5;

export const searchOptionsSchema = z
  .object({
    /** stage1: the bi-encoder alone; hybrid: stage 2 rescores the top k1 */
    mode: z.enum(MODES).default('stage1'),
    /** results to return */
    k: z.number().int().min(1).max(LIMITS.k).default(10),
    /** candidates stage 2 rescores (and MMR picks from) */
    k1: z.number().int().min(1).max(LIMITS.k1).default(100),
    /** results to skip first (paging) */
    offset: z.number().int().min(0).max(LIMITS.offset).default(0),
    fusion: z.enum(FUSIONS).default('weighted'),
    /** weight of stage 2 in weighted fusion, both directions; unset: the cross-encoder's own for the query's direction (chosen on dev), else 0.5 */
    alpha: z.number().min(0).max(1).optional(),
    rrfK: z.number().min(0).default(60),
    normalisation: z.enum(NORMALISATIONS).default('robust'),
    /** MMR trade-off in (0, 1]; 1: no diversification */
    mmr: z.number().gt(0).max(1).default(1),
    /** metadata filters (src/index/filter.ts) */
    where: filterSchema.optional(),
    /** stage 2's time budget per query; past it, stage-1 results are returned, marked */
    budgetMs: z.number().positive().max(600_000).default(2000),
    rerankBatchSize: z.number().int().min(1).max(4096).optional(),
    /** query expansion (query-expansion.ts): WordNet synonyms and hypernyms and caption-style rewrites, combined with the query in embedding space */
    expand: z.boolean().default(false),
    /** weight of the synonym rewrites' mean embedding (the original query weighs 1) */
    expandSynonym: z.number().min(0).max(1).default(0.5),
    /** weight of the hypernym rewrites' mean embedding */
    expandHypernym: z.number().min(0).max(1).default(0.25),
    /** weight of the caption-style rewrites' ("a photo of …") mean embedding */
    expandCaption: z.number().min(0).max(1).default(0.25),
  })
  .strict();

export type SearchOptionsInput = z.input<typeof searchOptionsSchema>;
export type SearchOptions = z.output<typeof searchOptionsSchema>;
export type Mode = SearchOptions['mode'];
export type FusionMode = SearchOptions['fusion'];
export type Normalisation = SearchOptions['normalisation'];

export const DEFAULT_SEARCH: SearchOptions = searchOptionsSchema.parse({});

/** The expansion weights of options with `expand` on; undefined when it is off. */
export const expandWeights = (o: Pick<SearchOptions, 'expand' | 'expandSynonym' | 'expandHypernym' | 'expandCaption'>) =>
  o.expand ? { synonym: o.expandSynonym, hypernym: o.expandHypernym, caption: o.expandCaption } : undefined;

/** camelCase option → the CLI flag a user types */
export const flagOf = (key: string) => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/**
 * Validates options from a source; an error names the offending field as that source spells
 * it: `name(field)` gives `--k` for the CLI, `duo.yaml: search.k` for a config file, `k` for the API.
 */
export function parseSearchOptions(raw: unknown, name: (field: string) => string = (f) => f): SearchOptions {
  const result = searchOptionsSchema.safeParse(raw ?? {});
  if (result.success) return result.data;
  throw issueError(result.error, name);
}

/**
 * A comma list of fusion weights from the command line (`--alpha 0.3,0.5`), each checked by the
 * schema under `flag`; an empty entry is refused rather than read as 0 (Number('') is 0).
 * Repeats are dropped, the order kept.
 */
export function parseAlphaList(flag: string, text: string): number[] {
  const values = text.split(',').map((a) => {
    if (a.trim() === '') throw createError('BAD_ARGUMENT', flag, `"${text}" has an empty entry`);
    return parseSearchOptions({ alpha: Number(a.trim()) }, () => flag).alpha!;
  });
  return [...new Set(values)];
}

/** A zod error as one BAD_ARGUMENT naming its first issue's field, spelt by `name` (its first path part) and dots after. */
export function issueError(error: z.ZodError, name: (field: string) => string): DuoError {
  const issue = error.issues[0]!;
  const keys = issue.code === 'unrecognized_keys' ? (issue as { keys: string[] }).keys : [];
  const path = [...issue.path.map(String), ...keys.slice(0, 1)];
  const field = path.length > 0 ? name(path[0]!) + path.slice(1).map((p) => `.${p}`).join('') : name('(top level)');
  return createError('BAD_ARGUMENT', field, issue.code === 'unrecognized_keys' ? 'unknown key' : issue.message);
}
