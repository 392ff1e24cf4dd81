/**
 * `--where` on the command line → a declarative filter (src/index/filter.ts):
 *   key=value   equality (numbers and true/false are typed; `key=[a,b]` is one of)
 *   key>=v, key>v, key<=v, key<v   ranges over numbers or ISO dates
 *   folder=holidays   items under that folder of the indexed root (an id prefix)
 */
import { createError } from '../errors.js';
import type { Filter, Range, Scalar } from '../index/filter.js';

const typed = (v: string): Scalar => (/^-?\d+(\.\d+)?$/.test(v) ? Number(v) : v === 'true' ? true : v === 'false' ? false : v);
const RANGE_OPS = { '>=': 'gte', '>': 'gt', '<=': 'lte', '<': 'lt' } as const;

export function parseWhere(pairs: string[] | undefined): Filter | undefined {
  if (!pairs || pairs.length === 0) return undefined;
  const filter: Filter = {};
  for (const p of pairs) {
    const m = /^([^=<>]+?)\s*(>=|<=|=|>|<)\s*(.*)$/.exec(p);
    if (!m || !m[1]) throw createError('BAD_ARGUMENT', '--where', `expected key=value, key>=value, key<value…, got "${p}"`);
    const [, key, op, value] = m as unknown as [string, string, string, string];
    if (op === '=') {
      if (key === 'folder') filter.id = { prefix: `${value.replace(/\/+$/, '')}/` };
      else if (/^\[.*\]$/.test(value)) filter[key] = { in: value.slice(1, -1).split(',').map((v) => typed(v.trim())) };
      else filter[key] = typed(value);
      continue;
    }
    const bound = typed(value);
    if (typeof bound === 'boolean') throw createError('BAD_ARGUMENT', '--where', `${key}${op}${value}: a range needs a number or a date`);
    const prior = filter[key];
    const range: Range = prior !== undefined && typeof prior === 'object' && !('in' in prior) && !('prefix' in prior) ? prior : {};
    range[RANGE_OPS[op as keyof typeof RANGE_OPS]] = bound;
    filter[key] = range;
  }
  return filter;
}
