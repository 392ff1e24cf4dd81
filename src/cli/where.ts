/**
 * `--where` on the command line → a declarative filter (src/index/filter.ts):
 *   key=value   equality (numbers and true/false are typed; `key=[a,b]` is one of)
 *   key>=v, key>v, key<=v, key<v   ranges over numbers or ISO dates
 *   folder=holidays   items under that folder of the indexed root (an id prefix)
 */
import { createError } from '../errors.js';
import type { Filter, Range, Scalar } from '../index/filter.js';

/** Numbers and booleans are typed; `01234` (a zip code, an id) stays a string. */
const typed = (v: string): Scalar => (/^-?(0|[1-9]\d*)(\.\d+)?$/.test(v) ? Number(v) : v === 'true' ? true : v === 'false' ? false : v);
const RANGE_OPS = { '>=': 'gte', '>': 'gt', '<=': 'lte', '<': 'lt' } as const;

export function parseWhere(pairs: string[] | undefined): Filter | undefined {
  if (!pairs || pairs.length === 0) return undefined;
  const filter: Filter = {};
  for (const p of pairs) {
    const m = /^([^=<>]+?)\s*(>=|<=|=|>|<)\s*(.*)$/.exec(p);
    if (!m || !m[1]) throw createError('BAD_ARGUMENT', '--where', `expected key=value, key>=value, key<value…, got "${p}"`);
    const [, rawKey, op, rawValue] = m as unknown as [string, string, string, string];
    const value = rawValue.trim();
    const key = rawKey.trim() === 'folder' ? 'id' : rawKey.trim();
    const prior = filter[key];
    const isRange = (c: unknown): c is Range => typeof c === 'object' && c !== null && !('in' in c) && !('prefix' in c);
    // one condition per key: only range bounds combine (key>=a key<b)
    if (prior !== undefined && (op === '=' || !isRange(prior))) throw createError('BAD_ARGUMENT', '--where', `${rawKey.trim()} is given twice; give one condition per key (a range may take two bounds)`);
    if (op === '=') {
      if (rawKey.trim() === 'folder') filter.id = { prefix: `${value.replace(/\/+$/, '')}/` };
      else if (/^\[.*\]$/.test(value)) {
        const list = value.slice(1, -1).split(',').map((v) => v.trim()).filter((v) => v !== '');
        if (list.length === 0) throw createError('BAD_ARGUMENT', '--where', `${p}: an empty list matches nothing`);
        filter[key] = { in: list.map(typed) };
      } else filter[key] = typed(value);
      continue;
    }
    const bound = typed(value);
    if (typeof bound === 'boolean') throw createError('BAD_ARGUMENT', '--where', `${key}${op}${value}: a range needs a number or a date`);
    const range: Range = isRange(prior) ? prior : {};
    range[RANGE_OPS[op as keyof typeof RANGE_OPS]] = bound;
    filter[key] = range;
  }
  return filter;
}
