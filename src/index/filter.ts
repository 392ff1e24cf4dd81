/**
 * Declarative metadata filters, so each store can push them down (a SQL WHERE, a filtered
 * HNSW search) instead of calling back into JavaScript per row:
 *
 *   { camera: 'X100' }                      equality
 *   { album: { in: ['paris', 'rome'] } }    one of
 *   { bytes: { gte: 1000, lt: 5e6 } }        numeric range
 *   { modified: { gte: '2024-01-01' } }      date range (ISO dates; compared as instants)
 *   { id: { prefix: 'holidays/' } }          prefix (the id is the path under the indexed root)
 *
 * All conditions must hold. `id` names the item's id; other keys its metadata.
 */
import { z } from 'zod';

export type Scalar = string | number | boolean;
export type Metadata = Record<string, Scalar>;

const scalar = z.union([z.string(), z.number(), z.boolean()]);
const bound = z.union([z.number(), z.string().refine((s) => comparable(s) !== undefined, 'a range bound is a number or an ISO date (YYYY-MM-DD…)')]);

export const conditionSchema = z.union([
  scalar,
  z.object({ in: z.array(scalar).min(1) }).strict(),
  z.object({ prefix: z.string() }).strict(),
  z
    .object({ gt: bound, gte: bound, lt: bound, lte: bound })
    .partial()
    .strict()
    .refine((r) => Object.keys(r).length > 0, 'a range needs gt, gte, lt or lte'),
]);

export const filterSchema = z.record(z.string().min(1), conditionSchema);

export type Condition = z.infer<typeof conditionSchema>;
export type Filter = z.infer<typeof filterSchema>;

export type Range = { gt?: number | string; gte?: number | string; lt?: number | string; lte?: number | string };

export const isRange = (c: Condition): c is Range => typeof c === 'object' && !('in' in c) && !('prefix' in c);

/** A number, or the instant of an ISO date string; undefined when the value is neither. */
export function comparable(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v === 'string' && /^\d{4}-\d{2}-\d{2}/.test(v)) {
    const t = Date.parse(v);
    return Number.isNaN(t) ? undefined : t;
  }
  return undefined;
}

function holds(c: Condition, value: Scalar | undefined): boolean {
  if (typeof c !== 'object') return value === c;
  if ('in' in c) return value !== undefined && c.in.includes(value);
  if ('prefix' in c) return typeof value === 'string' && value.startsWith(c.prefix);
  const v = comparable(value);
  if (v === undefined) return false;
  const b = (x: number | string | undefined) => (x === undefined ? undefined : comparable(x));
  const [gt, gte, lt, lte] = [b(c.gt), b(c.gte), b(c.lt), b(c.lte)];
  return (gt === undefined || v > gt) && (gte === undefined || v >= gte) && (lt === undefined || v < lt) && (lte === undefined || v <= lte);
}

/** The in-memory evaluation of a filter, for stores that scan in JavaScript. */
export function matches(filter: Filter, id: string, metadata: Metadata | undefined): boolean {
  for (const [key, c] of Object.entries(filter)) {
    if (!holds(c, key === 'id' ? id : metadata?.[key])) return false;
  }
  return true;
}

export const isEmptyFilter = (f: Filter | undefined): f is undefined => !f || Object.keys(f).length === 0;
