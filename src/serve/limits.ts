/**
 * The server's own limits. The option schema's caps (src/search/options.ts) are wide so that
 * evaluation can rank a whole split; a server answering strangers caps every request lower.
 * Each is a flag of `duo serve` and a key of the config file's `serve:` section.
 */
import { z } from 'zod';
import { LIMITS } from '../search/options.js';
import { issueError } from '../search/options.js';

/** What a full queue does: answer 503 with Retry-After, or run stage 1 alone and mark the response. */
export const OVERLOAD = ['reject', 'stage1'] as const;

/** Thumbnail edges (px) the server renders; any other size is refused, so clients cannot fill the cache. */
export const THUMBNAIL_SIZES = [128, 256, 512] as const;

const int = (min: number, max: number) => z.number().int().min(min).max(max);

export const serveLimitsSchema = z
  .object({
    /** most results one request may ask for */
    maxK: int(1, LIMITS.k).default(100),
    /** most stage-2 candidates (and MMR pool) one request may ask for */
    maxK1: int(1, LIMITS.k1).default(1000),
    /** deepest page: offset + k */
    maxOffset: int(0, LIMITS.offset).default(10_000),
    /** longest text query, in characters */
    maxQueryChars: int(1, LIMITS.queryChars).default(500),
    /** largest JSON body, in bytes */
    bodyLimitBytes: int(1024, 64 << 20).default(64 << 10),
    /** largest uploaded image file, in bytes */
    uploadLimitBytes: int(1024, 1 << 30).default(16 << 20),
    /** largest uploaded image, in pixels (checked from its header before decoding) */
    maxImagePixels: int(1, 1_000_000_000).default(40_000_000),
    /** model work (stage 2, image encoding) running at once */
    queueConcurrency: int(1, 256).default(4),
    /** model work waiting for a slot; one more is overload */
    queueLength: int(0, 100_000).default(64),
    onOverload: z.enum(OVERLOAD).default('reject'),
    /** the Retry-After of a 503, in seconds */
    retryAfterS: int(1, 3600).default(1),
    /** a request's whole time budget (queue wait, encode, both stages); stage 2's own budget is capped to what is left */
    requestBudgetMs: int(10, 600_000).default(10_000),
  })
  .strict();

export type ServeLimits = z.output<typeof serveLimitsSchema>;
export type ServeLimitsInput = z.input<typeof serveLimitsSchema>;

export const DEFAULT_LIMITS: ServeLimits = serveLimitsSchema.parse({});

/** Validates limits from a source; errors name the field as `name` spells it (`--max-k`, `duo.yaml: serve.maxK`). */
export function parseLimits(raw: unknown, name: (field: string) => string = (f) => f): ServeLimits {
  const result = serveLimitsSchema.safeParse(raw ?? {});
  if (result.success) return result.data;
  throw issueError(result.error, name);
}
