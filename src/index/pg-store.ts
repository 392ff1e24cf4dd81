/**
 * The PostgreSQL store: items in a table with pgvector, reached through one pg.Pool.
 *
 *   openStore('postgres://user@host:5432/photos?table=holidays', { write: true, create: info })
 *
 * The table (pg-schema.ts) holds each item's id, vector (`vector(dim)`, L2-normalised, so the
 * inner product is the cosine), metadata (jsonb), the range-comparable values of its metadata
 * (pg-filter.ts) and its stage-2 regions (fp16 bytea). Every upsert or remove is one
 * transaction: durable, and seen by every reader, when it returns.
 *
 * Search is one statement per batch of queries (a LATERAL join over the query array), with the
 * filter pushed into its WHERE clause. Below `hnsw.minRows` rows it is an exact scan; at the
 * first flush that finds that many, the store builds an HNSW index in one pass (several times
 * faster than growing it row by row) and later rows join the graph as they are inserted.
 * Filtered searches use pgvector's iterative index scan; a filtered query the index answers
 * short of k is run again exactly, so a filter never hides matches that exist.
 */
import pg from 'pg';
import type { Pool, PoolClient } from 'pg';
import { createError, DuoError } from '../errors.js';
import { l2normalize } from '../models/encoder.js';
import { fromHalf, toHalf } from '../util/float16.js';
import type { Filter, Metadata } from './filter.js';
import { comparableValues, filterToSql } from './pg-filter.js';
import { DEFAULT_HNSW, parsePgLocation, type HnswSettings } from './pg-location.js';
import { ident, migrate, storeState, SCHEMA_VERSION } from './pg-schema.js';
import type { Hit, StoredItem, StoreInfo, StoreSearchOptions, UpsertItem, VectorStore } from './vector-store.js';

export interface PgOpenOptions {
  /** allow upserts and removals (a reader cannot change the table) */
  write?: boolean;
  /** create the store with this identity when its table does not exist yet */
  create?: StoreInfo;
  /** HNSW settings for a store created now (over the defaults and the URL's) */
  hnsw?: Partial<HnswSettings>;
  /**
   * HNSW candidates per query: what openPgStore's sessions are set to (over the URL's ef_search);
   * for a pool of the caller's, what its sessions use (default 40, pgvector's; see pgSessionSetup)
   */
  efSearch?: number;
  /** maintenance_work_mem while the HNSW index is built (the graph is built in memory when it fits) */
  buildMemory?: string;
  /**
   * answer a batch of queries in one statement (a LATERAL join); default: yes, except on Citus,
   * which cannot push such a join down to the shards of a distributed table (then one statement
   * per query, run side by side on the pool's connections)
   */
  batchQueries?: boolean;
}

/** rows per INSERT statement (each one parameter array per column) */
const UPSERT_CHUNK = 500;
/** how often a store without the HNSW index looks whether another process has built it */
const INDEX_RECHECK_MS = 5_000;
/** rows per page of list() (keyset pagination: no transaction is held between pages) */
const LIST_PAGE = 1000;

const vectorText = (v: Float32Array) => `[${Array.from(v, (x) => x.toPrecision(9)).join(',')}]`;
const parseVector = (text: string) => Float32Array.from(text.slice(1, -1).split(','), Number);

function checkVector(what: string, v: Float32Array, dim: number): void {
  if (v.length !== dim) throw createError('INDEX_DIM_MISMATCH', what, dim, v.length);
  for (let j = 0; j < v.length; j++) if (!Number.isFinite(v[j]!)) throw createError('BAD_ARGUMENT', what, 'contains NaN or infinity');
}

/**
 * The session settings a store's searches want, for a pool's `onConnect`: pgvector reads them
 * per connection. ef_search is how many candidates the graph keeps per query; the iterative
 * scan (pgvector 0.8 and later) keeps walking the graph until a filtered query has k matches.
 * A pool without them still answers correctly (a short filtered query is rerun exactly), only slower.
 */
export function pgSessionSetup(efSearch: number): (client: pg.ClientBase) => Promise<void> {
  return async (client) => {
    await client.query(
      `SELECT set_config('hnsw.ef_search', $1, false),
        CASE WHEN coalesce((SELECT string_to_array(extversion, '.')::int[] >= '{0,8}' FROM pg_extension WHERE extname = 'vector'), true)
        THEN set_config('hnsw.iterative_scan', 'strict_order', false) END`,
      [String(efSearch)],
    );
  };
}

/** Opens (or creates) a store from a postgres:// location; the store owns the pool it creates. */
export async function openPgStore(location: string, options: PgOpenOptions = {}): Promise<PgStore> {
  const at = parsePgLocation(location);
  const efSearch = options.efSearch ?? at.efSearch;
  const pool = new pg.Pool({ connectionString: at.connectionString, max: at.poolMax, onConnect: pgSessionSetup(efSearch) });
  // an idle connection the server dropped: the pool discards it, and the next call connects again (or says why not)
  pool.on('error', () => {});
  try {
    return await PgStore.open(pool, at.table, { ...options, hnsw: { ...at.hnsw, ...options.hnsw }, efSearch }, { location: at.display, ownsPool: true });
  } catch (error) {
    await pool.end();
    throw error;
  }
}

export class PgStore implements VectorStore {
  private closed = false;
  /** rows written since the planner statistics were last refreshed */
  private dirty = false;
  private hasIndex = false;
  /** when a store without the HNSW index last looked for it (another process may build it) */
  private indexCheckedAt = -Infinity;

  private constructor(
    private readonly pool: Pool,
    private readonly table: string,
    readonly location: string,
    readonly info: StoreInfo,
    private readonly hnsw: HnswSettings,
    private readonly o: { write: boolean; ownsPool: boolean; efSearch: number; buildMemory: string; batchQueries: boolean },
  ) {}

  /**
   * A store on a pool the caller created (and ends): several stores, or a store and the caller's
   * own queries, can share one. Runs the schema's missing migrations; refuses another model.
   */
  static async open(pool: Pool, table: string, options: PgOpenOptions = {}, own: { location?: string; ownsPool?: boolean } = {}): Promise<PgStore> {
    const location = own.location ?? `postgres:///?table=${table}`;
    const { record, citus } = await withClient(pool, location, async (client) => {
      const { rows } = await client.query<{ citus: boolean }>(`SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') AS citus`);
      const state = await storeState(client, table);
      if (state.version === SCHEMA_VERSION) return { record: state.record!, citus: rows[0]!.citus };
      if (state.version === 0 && !options.create) throw createError('FILE_NOT_FOUND', `${location} (no duo store in table ${table})`);
      await migrate(client, table, options.create && { info: options.create, hnsw: { ...DEFAULT_HNSW, ...options.hnsw } });
      return { record: (await storeState(client, table)).record!, citus: rows[0]!.citus };
    });
    const asked = options.create;
    if (asked && asked.modelId !== record.info.modelId) throw createError('INDEX_MODEL_MISMATCH', location, record.info.modelId, asked.modelId);
    if (asked && asked.dim !== record.info.dim) throw createError('INDEX_DIM_MISMATCH', location, record.info.dim, asked.dim);
    const store = new PgStore(pool, table, location, record.info, record.hnsw, {
      write: Boolean(options.write || options.create),
      ownsPool: own.ownsPool ?? false,
      efSearch: options.efSearch ?? 40,
      buildMemory: options.buildMemory ?? '512MB',
      batchQueries: options.batchQueries ?? !citus,
    });
    if (store.o.write) await store.ensureIndex();
    else await store.refreshIndexState();
    return store;
  }

  private get t(): string {
    return ident(this.table);
  }

  private get indexName(): string {
    return `${this.table}_hnsw`;
  }

  private assertOpen(): void {
    if (this.closed) throw createError('BAD_ARGUMENT', this.location, 'the store is closed');
  }

  private assertWritable(): void {
    this.assertOpen();
    if (!this.o.write) throw createError('BAD_ARGUMENT', this.location, 'opened read-only');
  }

  private query<R extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<pg.QueryResult<R>> {
    return this.pool.query<R>(sql, params);
  }

  private async indexExists(): Promise<boolean> {
    const { rows } = await this.query<{ present: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS present`, [ident(this.indexName)]);
    return rows[0]!.present;
  }

  /** Whether the HNSW index exists yet, looked up at most every few seconds until it does. */
  private async refreshIndexState(): Promise<void> {
    if (this.hasIndex || performance.now() - this.indexCheckedAt < INDEX_RECHECK_MS) return;
    this.indexCheckedAt = performance.now();
    this.hasIndex = await this.indexExists();
  }

  /** Builds the HNSW index when the table has reached `minRows` and has none yet. */
  private async ensureIndex(): Promise<void> {
    this.indexCheckedAt = -Infinity;
    await this.refreshIndexState();
    if (this.hasIndex) return;
    const { rows } = await this.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${this.t}`);
    if (rows[0]!.n < this.hnsw.minRows) return;
    const { type, m, efConstruction } = this.hnsw;
    const column = type === 'halfvec' ? `(embedding::halfvec(${this.info.dim})) halfvec_ip_ops` : 'embedding vector_ip_ops';
    await this.transaction(async (client) => {
      await client.query(`SELECT set_config('maintenance_work_mem', $1, true)`, [this.o.buildMemory]);
      await client.query(`CREATE INDEX IF NOT EXISTS ${ident(this.indexName)} ON ${this.t} USING hnsw (${column}) WITH (m = ${Math.trunc(m)}, ef_construction = ${Math.trunc(efConstruction)})`);
    });
    this.hasIndex = true;
    this.dirty = true;
  }

  private async transaction<T>(work: (client: PoolClient) => Promise<T>): Promise<T> {
    return withClient(this.pool, this.location, async (client) => {
      await client.query('BEGIN');
      try {
        const result = await work(client);
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {});
        throw error;
      }
    });
  }

  async count(filter?: Filter): Promise<number> {
    this.assertOpen();
    const params: unknown[] = [];
    const { rows } = await this.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${this.t} WHERE ${filterToSql(filter, params)}`, params);
    return rows[0]!.n;
  }

  async upsert(items: UpsertItem[]): Promise<void> {
    this.assertWritable();
    const size = this.info.reranker?.regionSize;
    // every item is checked before anything is written: a rejected batch changes nothing
    for (const item of items) {
      checkVector(`vector for ${item.id}`, item.vector, this.info.dim);
      if (size && item.regions?.length !== size) throw createError('INDEX_DIM_MISMATCH', `stage-2 regions of ${item.id}`, size, item.regions?.length ?? 0);
    }
    // one row per id, the last given (one INSERT … ON CONFLICT cannot update a row twice)
    const rows = [...new Map(items.map((i) => [i.id, i])).values()];
    if (rows.length === 0) return;
    await this.transaction(async (client) => {
      for (let i = 0; i < rows.length; i += UPSERT_CHUNK) {
        const chunk = rows.slice(i, i + UPSERT_CHUNK);
        await client.query(
          `INSERT INTO ${this.t} (id, embedding, metadata, comparable, regions)
           SELECT * FROM unnest($1::text[], $2::vector[], $3::jsonb[], $4::jsonb[], $5::bytea[])
           ON CONFLICT (id) DO UPDATE SET embedding = excluded.embedding, metadata = excluded.metadata, comparable = excluded.comparable, regions = excluded.regions`,
          [
            chunk.map((r) => r.id),
            chunk.map((r) => vectorText(l2normalize(Float32Array.from(r.vector)))),
            chunk.map((r) => JSON.stringify(r.metadata ?? {})),
            chunk.map((r) => JSON.stringify(comparableValues(r.id, r.metadata ?? {}))),
            chunk.map((r) => (size && r.regions ? Buffer.from(toHalf(r.regions).buffer) : null)),
          ],
        );
      }
    });
    this.dirty = true;
  }

  async remove(ids: string[]): Promise<number> {
    this.assertWritable();
    if (ids.length === 0) return 0;
    const { rowCount } = await this.query(`DELETE FROM ${this.t} WHERE id = ANY($1::text[])`, [ids]);
    this.dirty = true;
    return rowCount ?? 0;
  }

  async get(ids: string[]): Promise<(StoredItem | undefined)[]> {
    this.assertOpen();
    const { rows } = await this.query<{ id: string; v: string; metadata: Metadata }>(`SELECT id, embedding::text AS v, metadata FROM ${this.t} WHERE id = ANY($1::text[])`, [ids]);
    const byId = new Map(rows.map((r) => [r.id, r]));
    return ids.map((id) => {
      const r = byId.get(id);
      return r && { id, vector: parseVector(r.v), metadata: r.metadata };
    });
  }

  async metadataOf(ids: string[]): Promise<(Metadata | undefined)[]> {
    this.assertOpen();
    const { rows } = await this.query<{ id: string; metadata: Metadata }>(`SELECT id, metadata FROM ${this.t} WHERE id = ANY($1::text[])`, [ids]);
    const byId = new Map(rows.map((r) => [r.id, r.metadata]));
    return ids.map((id) => byId.get(id));
  }

  async *list(): AsyncIterable<{ id: string; metadata: Metadata }> {
    this.assertOpen();
    for (let after: string | null = null; ; ) {
      const { rows }: pg.QueryResult<{ id: string; metadata: Metadata }> = await this.query(
        `SELECT id, metadata FROM ${this.t} WHERE $1::text IS NULL OR id > $1 ORDER BY id LIMIT ${LIST_PAGE}`,
        [after],
      );
      for (const row of rows) yield row;
      if (rows.length < LIST_PAGE) return;
      after = rows.at(-1)!.id;
    }
  }

  /**
   * The search statement. Batched, it answers every query of $1 (a vector[]) at once through a
   * LATERAL join; otherwise it answers the one query $1 (a vector), for servers that cannot run
   * that join over a distributed table (Citus). `order` 'index' orders by the indexed distance
   * (the HNSW graph answers when there is one; ties by insertion order); 'exact' orders by the
   * score itself, which no index serves, so PostgreSQL scans every row the filter keeps.
   */
  private searchSql(where: string, order: 'index' | 'exact', batched: boolean): string {
    const d = this.info.dim;
    const q = batched ? 'q.v' : '$1::vector';
    const distance = this.hnsw.type === 'halfvec' ? `embedding::halfvec(${d}) <#> ${q}::halfvec(${d})` : `embedding <#> ${q}`;
    const one = `SELECT id, seq::float8 AS seq, -(embedding <#> ${q}) AS score FROM ${this.t}
        WHERE ${where}
        ORDER BY ${order === 'index' ? distance : 'score DESC'}, seq
        LIMIT $2`;
    if (!batched) return `SELECT 1 AS n, * FROM (${one}) AS h`;
    return `SELECT q.n::int AS n, h.* FROM unnest($1::vector[]) WITH ORDINALITY AS q(v, n) CROSS JOIN LATERAL (${one}) AS h`;
  }

  /** values: the query vectors ($1), k ($2), then the filter's parameters */
  private async runSearch(values: unknown[], where: string, order: 'index' | 'exact'): Promise<Hit[][]> {
    type Row = { n: number; id: string; score: number; seq: number };
    const k = values[1] as number;
    const run = async (sql: string, params: unknown[]): Promise<Row[]> => {
      // pgvector returns at most ef_search rows per index scan: a larger k raises it for this statement
      if (order !== 'index' || !this.hasIndex || k <= this.o.efSearch) return (await this.query<Row>(sql, params)).rows;
      return this.transaction(async (client) => {
        await client.query(`SELECT set_config('hnsw.ef_search', $1, true)`, [String(Math.min(k, 1000))]);
        return (await client.query<Row>(sql, params)).rows;
      });
    };
    const texts = values[0] as string[];
    const rest = values.slice(1);
    let lists: Row[][];
    if (this.o.batchQueries) {
      lists = texts.map(() => []);
      for (const row of await run(this.searchSql(where, order, true), values)) lists[row.n - 1]!.push(row);
    } else {
      lists = await Promise.all(texts.map((t) => run(this.searchSql(where, order, false), [t, ...rest])));
    }
    // best first by the exact score (a halfvec graph orders by its approximation), ties by insertion
    return lists.map((l) => l.sort((a, b) => b.score - a.score || a.seq - b.seq).map(({ id, score }) => ({ id, score })));
  }

  async search(queries: Float32Array[], k: number, options: StoreSearchOptions = {}): Promise<Hit[][]> {
    this.assertOpen();
    options.signal?.throwIfAborted();
    queries.forEach((q) => checkVector('query', q, this.info.dim));
    const kk = Math.max(0, Math.floor(k));
    if (kk === 0 || queries.length === 0) return queries.map(() => []);
    await this.refreshIndexState();
    const texts = queries.map((q) => vectorText(l2normalize(Float32Array.from(q))));
    const values: unknown[] = [texts, kk];
    const where = filterToSql(options.filter, values);
    const hits = await this.runSearch(values, where, 'index');
    // a filtered query the graph answered short of k: the matches it missed are found exactly
    const short = where !== 'TRUE' && this.hasIndex ? hits.flatMap((h, i) => (h.length < kk ? [i] : [])) : [];
    if (short.length > 0) {
      options.signal?.throwIfAborted();
      const exact = await this.runSearch([short.map((i) => texts[i]!), ...values.slice(1)], where, 'exact');
      short.forEach((i, j) => (hits[i] = exact[j]!));
    }
    return hits;
  }

  async regions(ids: string[], signal?: AbortSignal): Promise<(Float32Array | undefined)[]> {
    this.assertOpen();
    signal?.throwIfAborted();
    if (!this.info.reranker?.regionSize || ids.length === 0) return ids.map(() => undefined);
    const { rows } = await this.query<{ id: string; regions: Buffer | null }>(`SELECT id, regions FROM ${this.t} WHERE id = ANY($1::text[])`, [ids]);
    const byId = new Map(rows.map((r) => [r.id, r.regions]));
    return ids.map((id) => {
      const bytes = byId.get(id);
      if (!bytes) return undefined;
      // copied into an aligned buffer: the driver's Buffer may start at an odd offset
      const half = new Uint16Array(bytes.length / 2);
      Buffer.from(half.buffer).set(bytes);
      return fromHalf(half);
    });
  }

  /** Builds the HNSW index when it is due and refreshes the planner's statistics after writes. */
  async flush(): Promise<void> {
    this.assertOpen();
    if (!this.o.write) return;
    await this.ensureIndex();
    if (this.dirty) {
      // PGlite runs no autovacuum; on a server this only brings the statistics forward
      await this.query(`ANALYZE ${this.t}`);
      this.dirty = false;
    }
  }

  /** Bytes the table, its indexes and its TOAST data take in the database. */
  async sizeOnDisk(): Promise<number> {
    const { rows } = await this.query<{ bytes: string }>(`SELECT pg_total_relation_size($1::regclass) AS bytes`, [this.t]);
    return Number(rows[0]!.bytes);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    try {
      if (this.o.write) await this.flush();
    } finally {
      this.closed = true;
      if (this.o.ownsPool) await this.pool.end();
    }
  }
}

/** Runs work on one connection of the pool; a connection that cannot be made names the location. */
async function withClient<T>(pool: Pool, location: string, work: (client: PoolClient) => Promise<T>): Promise<T> {
  let client: PoolClient;
  try {
    client = await pool.connect();
  } catch (error) {
    throw new DuoError('FILE_NOT_FOUND', `cannot reach ${location}: ${(error as Error).message}`, { cause: error });
  }
  try {
    return await work(client);
  } finally {
    client.release();
  }
}
