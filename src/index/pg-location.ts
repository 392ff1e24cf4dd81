/**
 * A PostgreSQL store's location: `postgres://user[:password]@host:port/db?table=name`, plus
 * the store's own settings as query parameters (taken out before the rest reaches `pg`):
 *
 *   table            the items table (default duo_items); several stores share one database
 *   pool_max         connections in this process's pool (default 4)
 *   ef_search        HNSW candidates per query (default 100; raised to k when k is larger)
 *   m, ef_construction, hnsw_type (vector | halfvec), hnsw_min_rows
 *                    the HNSW index, fixed when the store is created (see pg-schema.ts)
 *
 * Everything else (sslmode, application_name, …) goes to `pg` as it is; a password can also
 * come from PGPASSWORD or ~/.pgpass, as for psql. The location a store reports never holds it.
 */
import { createError } from '../errors.js';

export const DEFAULT_TABLE = 'duo_items';

export interface HnswSettings {
  /** what the graph stores: the full vector (float32), or a half-precision copy (half the size) */
  type: 'vector' | 'halfvec';
  m: number;
  efConstruction: number;
  /** the graph is built (in one pass) at the first flush that finds this many rows */
  minRows: number;
}

export const DEFAULT_HNSW: HnswSettings = { type: 'vector', m: 16, efConstruction: 64, minRows: 10_000 };

export interface PgLocation {
  /** the connection string for pg, without duo's parameters */
  connectionString: string;
  table: string;
  /** the location without a password, with its table */
  display: string;
  poolMax: number;
  efSearch: number;
  hnsw: Partial<HnswSettings>;
}

export const isPgLocation = (location: string) => /^postgres(ql)?:\/\//i.test(location);

/** A lowercase SQL identifier, so the table reads the same quoted and unquoted (and leaves room for `_hnsw`). */
const TABLE_NAME = /^[a-z_][a-z0-9_]{0,50}$/;

function integer(url: URL, name: string, min: number, max: number): number | undefined {
  const raw = url.searchParams.get(name);
  if (raw === null) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw createError('BAD_ARGUMENT', '--index', `${name}=${raw}: expected an integer from ${min} to ${max}`);
  return n;
}

export function parsePgLocation(location: string): PgLocation {
  let url: URL;
  try {
    url = new URL(location);
  } catch {
    throw createError('BAD_ARGUMENT', '--index', 'not a valid postgres:// URL');
  }
  const table = url.searchParams.get('table') ?? DEFAULT_TABLE;
  if (!TABLE_NAME.test(table)) throw createError('BAD_ARGUMENT', '--index', `table=${table}: a table name is lowercase letters, digits and _ (at most 51), not starting with a digit`);
  const type = url.searchParams.get('hnsw_type') ?? undefined;
  if (type !== undefined && type !== 'vector' && type !== 'halfvec') throw createError('BAD_ARGUMENT', '--index', `hnsw_type=${type}: expected vector or halfvec`);
  const hnsw: Partial<HnswSettings> = {
    type,
    m: integer(url, 'm', 2, 100),
    efConstruction: integer(url, 'ef_construction', 4, 1000),
    minRows: integer(url, 'hnsw_min_rows', 0, Number.MAX_SAFE_INTEGER),
  };
  for (const key of Object.keys(hnsw) as (keyof HnswSettings)[]) if (hnsw[key] === undefined) delete hnsw[key];
  const poolMax = integer(url, 'pool_max', 1, 100) ?? 4;
  const efSearch = integer(url, 'ef_search', 1, 1000) ?? 100;
  const own = ['table', 'pool_max', 'ef_search', 'm', 'ef_construction', 'hnsw_type', 'hnsw_min_rows'];
  const forPg = new URL(url);
  for (const key of own) forPg.searchParams.delete(key);
  const shown = new URL(url);
  shown.password = '';
  shown.searchParams.delete('password');
  shown.searchParams.set('table', table);
  return { connectionString: forPg.href, table, display: shown.href, poolMax, efSearch, hnsw };
}
