/**
 * The API's schemas. Request options are the engine's one option schema (src/search/options.ts)
 * with the server's lower caps; the same zod objects validate requests (fastify-type-provider-zod)
 * and become the OpenAPI document (@fastify/swagger), so the two cannot drift apart.
 */
import { z } from 'zod';
import { filterSchema } from '../index/filter.js';
import { DEFAULT_SEARCH, MODES, searchOptionsSchema } from '../search/options.js';
import { MAX_TERMS } from '../search/query-terms.js';
import { THUMBNAIL_SIZES, type ServeLimits } from './limits.js';

const DESCRIPTIONS = {
  mode: 'stage1: the bi-encoder alone; hybrid: the cross-encoder rescores the top k1',
  k: 'results to return',
  k1: 'stage-1 candidates for stage 2 (and for MMR)',
  offset: 'results to skip first (paging)',
  fusion: 'how stage-1 and stage-2 scores combine: replace, weighted or rrf',
  alpha: "weight of stage 2 in weighted fusion (default: the cross-encoder's own, else 0.5)",
  rrfK: 'the k of reciprocal-rank fusion',
  normalisation: 'score normalisation before weighted fusion: robust (median/MAD) or minmax',
  mmr: 'MMR diversity trade-off in (0, 1]; 1: no diversification',
  where: 'metadata filters: {key: value}, {key: {in: [...]}}, {key: {gte, lt, ...}}, {id: {prefix: "folder/"}}',
  budgetMs: "stage 2's time budget; past it, stage-1 results come back, marked",
  explain: 'add the options the engine ran with, the models and the number of candidates',
  expand: 'query expansion: WordNet synonyms and hypernyms and caption-style rewrites of text queries, combined with the query in embedding space',
  expandSynonym: 'with expand: weight of the synonym rewrites (the query weighs 1)',
  expandHypernym: 'with expand: weight of the hypernym rewrites',
  expandCaption: 'with expand: weight of the caption-style rewrites ("a photo of …")',
} as const;

const built = new WeakMap<ServeLimits, ReturnType<typeof buildOptionsSchema>>();

/** The engine's options as a request may give them: the same schema, capped by the server's limits (built once per limits). */
export function optionsSchema(limits: ServeLimits): ReturnType<typeof buildOptionsSchema> {
  let schema = built.get(limits);
  if (!schema) built.set(limits, (schema = buildOptionsSchema(limits)));
  return schema;
}

function buildOptionsSchema(limits: ServeLimits) {
  const s = searchOptionsSchema.shape;
  const capped = (field: 'k' | 'k1' | 'offset' | 'budgetMs', max: number) =>
    s[field].unwrap().max(max).default(Math.min(DEFAULT_SEARCH[field], max)).describe(DESCRIPTIONS[field]);
  return searchOptionsSchema.omit({ rerankBatchSize: true }).extend({
    mode: s.mode.describe(DESCRIPTIONS.mode),
    k: capped('k', limits.maxK),
    k1: capped('k1', limits.maxK1),
    offset: capped('offset', limits.maxOffset),
    fusion: s.fusion.describe(DESCRIPTIONS.fusion),
    alpha: s.alpha.describe(DESCRIPTIONS.alpha),
    rrfK: s.rrfK.describe(DESCRIPTIONS.rrfK),
    normalisation: s.normalisation.describe(DESCRIPTIONS.normalisation),
    mmr: s.mmr.describe(DESCRIPTIONS.mmr),
    where: s.where.describe(DESCRIPTIONS.where),
    budgetMs: capped('budgetMs', limits.requestBudgetMs),
    expand: s.expand.describe(DESCRIPTIONS.expand),
    expandSynonym: s.expandSynonym.describe(DESCRIPTIONS.expandSynonym),
    expandHypernym: s.expandHypernym.describe(DESCRIPTIONS.expandHypernym),
    expandCaption: s.expandCaption.describe(DESCRIPTIONS.expandCaption),
    explain: z.boolean().default(false).describe(DESCRIPTIONS.explain),
  });
}

export type ApiOptions = z.output<ReturnType<typeof optionsSchema>>;

export const queryText = (limits: ServeLimits) =>
  z
    .string()
    .max(limits.maxQueryChars)
    .refine((t) => t.trim() !== '', 'is empty')
    .describe('the text query');

/** One weighted term of a `terms` query: a text or an indexed item. */
const termSchema = (limits: ServeLimits) =>
  z
    .object({
      text: queryText(limits).optional().describe('a text term'),
      item: z.string().min(1).max(4096).optional().describe('an indexed item’s id: its stored embedding is the term'),
      weight: z.number().min(-1000).max(1000).default(1).describe('the term’s weight; negative moves results away from it'),
    })
    .strict()
    .superRefine((t, ctx) => {
      if ((t.text === undefined) === (t.item === undefined)) ctx.addIssue({ code: 'custom', path: ['text'], message: 'give one of text or item' });
    });

/** POST /v1/search: `text`, weighted `terms`, or an `expression` the server parses (one of the three) */
export const textSearchSchema = (limits: ServeLimits) =>
  optionsSchema(limits)
    .extend({
      text: queryText(limits).optional().describe('the text query (or give terms)'),
      terms: z
        .array(termSchema(limits))
        .min(1)
        .max(MAX_TERMS)
        .optional()
        .describe('weighted terms instead of text: the query embedding is Σ weight·embedding over the terms, normalised (`"a dog" - "grass"` is [{text: "a dog"}, {text: "grass", weight: -1}])'),
      expression: queryText(limits)
        .optional()
        .describe(
          'the query written as `duo search` reads it, parsed by the server: plain text, or weighted terms (`"a dog" - "grass"`, `2:beach + item:<id>`); a phrase that looks like a file name is text here, no file is read',
        ),
    })
    .superRefine((b, ctx) => {
      const given = (['text', 'terms', 'expression'] as const).filter((k) => b[k] !== undefined);
      if (given.length === 0) ctx.addIssue({ code: 'custom', path: ['text'], message: 'give text, terms or expression' });
      else if (given.length > 1) ctx.addIssue({ code: 'custom', path: [given[1]!], message: `give one of text, terms or expression, not ${given.join(' and ')}` });
    });

/** POST /v1/search/image and /v1/captions/search: multipart/form-data, documented here; the handler reads the parts and validates the fields with optionsSchema */
export const uploadSchema = (limits: ServeLimits) =>
  optionsSchema(limits).extend({
    image: z.string().meta({ format: 'binary' }).describe(`the image file (at most ${limits.uploadLimitBytes} bytes and ${limits.maxImagePixels} pixels)`),
    where: z.string().optional().describe(`${DESCRIPTIONS.where}, as JSON text`),
  });

/** GET /v1/items/{id}/similar: the options that make sense for a stored item, as query parameters */
export const similarQuerySchema = (limits: ServeLimits) =>
  z
    .object({
      k: z.coerce.number().int().min(1).max(limits.maxK).optional().describe(DESCRIPTIONS.k),
      offset: z.coerce.number().int().min(0).max(limits.maxOffset).optional().describe(DESCRIPTIONS.offset),
      k1: z.coerce.number().int().min(1).max(limits.maxK1).optional().describe(DESCRIPTIONS.k1),
      mmr: z.coerce.number().gt(0).max(1).optional().describe(DESCRIPTIONS.mmr),
      where: z.string().optional().describe(`${DESCRIPTIONS.where}, as JSON text`),
      explain: z.enum(['true', 'false']).optional().describe(DESCRIPTIONS.explain),
    })
    .strict();

export const itemParamsSchema = z.object({ id: z.string().min(1).max(4096).describe('the item id (URL-encoded: a/b.jpg is a%2Fb.jpg)') });

export const thumbnailQuerySchema = z
  .object({ size: z.enum(THUMBNAIL_SIZES.map(String) as [string, ...string[]]).default('256').describe('longest edge in pixels') })
  .strict();

// ---- responses

export const errorSchema = z
  .object({
    error: z.object({
      code: z.string().describe('a stable code (the CLI shares them): BAD_ARGUMENT, QUERY_NOT_UNDERSTOOD, BAD_IMAGE, ITEM_NOT_FOUND, OVERLOADED, …'),
      message: z.string(),
      field: z.string().optional().describe('the request field at fault, as the request spelt it'),
    }),
  })
  .meta({ id: 'Error' });

const stage = z.object({ score: z.number(), rank: z.number().int() });

export const hitSchema = z
  .object({
    rank: z.number().int(),
    id: z.string(),
    score: z.number().describe('the score the order is by: fused in hybrid mode, stage 1 otherwise'),
    stage1: stage,
    stage2: stage.optional(),
    text: z.string().optional().describe('the caption, in a caption index'),
    metadata: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])),
    thumbnailUrl: z.string().optional(),
    imageUrl: z.string().optional(),
  })
  .meta({ id: 'Hit' });

export const latencySchema = z.object({
  queue: z.number().describe('waiting for a model slot'),
  encode: z.number(),
  stage1: z.number(),
  stage2: z.number(),
  fusion: z.number(),
  total: z.number().describe('the engine’s stages (not the queue); 0 for a cached answer'),
});

export const explainSchema = z.object({
  model: z.string(),
  reranker: z.string().optional(),
  items: z.number().int().describe('items in the index'),
  options: z.object({
    mode: z.enum(MODES),
    k: z.number().int(),
    k1: z.number().int(),
    offset: z.number().int(),
    fusion: z.string(),
    alpha: z.number(),
    rrfK: z.number(),
    normalisation: z.string(),
    mmr: z.number(),
    budgetMs: z.number(),
    where: filterSchema.optional(),
  }),
});

export const searchResponseSchema = z
  .object({
    query: z.string(),
    mode: z.enum(MODES),
    k: z.number().int(),
    offset: z.number().int(),
    results: z.array(hitSchema),
    latencyMs: latencySchema,
    fallback: z.string().optional().describe('why these are stage-1 results although hybrid was asked for'),
    cached: z.boolean().optional(),
    next: z.object({ offset: z.number().int() }).optional().describe('the next page, when this one is full'),
    explain: explainSchema.optional(),
  })
  .meta({ id: 'SearchResponse' });

export type SearchResponse = z.output<typeof searchResponseSchema>;
export type Hit = z.output<typeof hitSchema>;

export const facetSchema = z.object({
  key: z.string().describe('the facet: folder, a metadata key, or size'),
  label: z.string(),
  count: z.number().int(),
  where: filterSchema.describe('the filter this chip applies'),
});

export const collectionSchema = z
  .object({
    items: z.number().int(),
    kind: z.enum(['images', 'captions']),
    model: z.string(),
    reranker: z.string().optional(),
    captions: z.boolean().describe('a caption index is served (POST /v1/captions/search)'),
    facets: z.array(facetSchema),
    limits: z.object({ maxK: z.number(), maxK1: z.number(), maxOffset: z.number(), maxQueryChars: z.number(), uploadLimitBytes: z.number(), thumbnailSizes: z.array(z.number()) }),
  })
  .meta({ id: 'Collection' });

export type Collection = z.output<typeof collectionSchema>;

/** The error statuses a route can answer with, each with the one error shape. */
export const errors = <const S extends number[]>(...statuses: S) => Object.fromEntries(statuses.map((s) => [s, errorSchema])) as { [K in S[number]]: typeof errorSchema };

/** A binary body (an image) in the OpenAPI document; the handler sends a Buffer or a stream. */
export const binaryBody = (type: string, description: string) => ({
  description,
  content: { [type]: { schema: z.any().meta({ type: 'string', format: 'binary' }) } },
});

export const notModified = z.undefined().describe('not modified (the ETag matched)');
