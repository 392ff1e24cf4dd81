/**
 * The declarative filters of filter.ts as a SQL WHERE clause: every key and value travels as a
 * parameter, never inside the SQL text. The clause means exactly what `matches()` means in
 * JavaScript:
 *
 *   equality   metadata @> {"key": value}          jsonb is typed: 5 matches 5, not "5"
 *   in         metadata @> ANY ({"key": v}, …)
 *   prefix     the value is a string starting with it (id: LIKE on the primary key)
 *   range      comparable -> key, compared as float8
 *
 * `comparable` is a jsonb column written with each row: for every value that a range can
 * compare, the number `comparable()` gives it (a number as it is, an ISO date as epoch
 * milliseconds). Ranges therefore compare numbers with numbers and instants with instants,
 * the same as the exact store, and never parse a date inside SQL (where a malformed one would
 * fail the whole query).
 */
import { comparable, isRange, type Condition, type Filter, type Metadata } from './filter.js';

/** The row's `comparable` column: range-comparable values by key (the id under `id`, as filters name it). */
export function comparableValues(id: string, metadata: Metadata): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, value] of Object.entries(metadata)) {
    const c = comparable(value);
    if (c !== undefined) out[key] = c;
  }
  const c = comparable(id);
  if (c !== undefined) out.id = c;
  else delete out.id; // a metadata key named id is out of a filter's reach (id names the item's id)
  return out;
}

const escapeLike = (s: string) => s.replace(/[\\%_]/g, '\\$&');

const RANGE_OPERATORS = { gt: '>', gte: '>=', lt: '<', lte: '<=' } as const;

/** One condition on `key` (the item's id when key is `id`); parameters are appended to `params`. */
function condition(key: string, c: Condition, params: unknown[]): string {
  const p = (value: unknown) => `$${params.push(value)}`;
  const isId = key === 'id';
  if (typeof c !== 'object') {
    if (isId) return typeof c === 'string' ? `id = ${p(c)}` : 'FALSE';
    return `metadata @> ${p(JSON.stringify({ [key]: c }))}::jsonb`;
  }
  if ('in' in c) {
    if (isId) return `id = ANY(${p(c.in.filter((v) => typeof v === 'string'))}::text[])`;
    return `metadata @> ANY(${p(c.in.map((v) => JSON.stringify({ [key]: v })))}::jsonb[])`;
  }
  if ('prefix' in c) {
    const pattern = `${escapeLike(c.prefix)}%`;
    if (isId) return `id LIKE ${p(pattern)}`;
    const k = p(key);
    return `(jsonb_typeof(metadata -> ${k}) = 'string' AND metadata ->> ${k} LIKE ${p(pattern)})`;
  }
  if (!isRange(c)) throw new Error('unreachable: a condition is a scalar, in, prefix or range');
  const parts: string[] = [];
  const k = p(key);
  for (const op of ['gt', 'gte', 'lt', 'lte'] as const) {
    const bound = c[op] === undefined ? undefined : comparable(c[op]);
    if (c[op] === undefined) continue;
    if (bound === undefined) return 'FALSE'; // filterSchema refuses such bounds; a filter built by hand may not
    parts.push(`(comparable -> ${k})::float8 ${RANGE_OPERATORS[op]} ${p(bound)}::float8`);
  }
  return parts.length > 0 ? `(${parts.join(' AND ')})` : 'TRUE';
}

/** The WHERE clause for a filter (`TRUE` when empty); its parameters are appended to `params`. */
export function filterToSql(filter: Filter | undefined, params: unknown[]): string {
  const parts = Object.entries(filter ?? {}).map(([key, c]) => condition(key, c, params));
  return parts.length > 0 ? parts.join(' AND ') : 'TRUE';
}
