/**
 * The schema of PostgreSQL stores, as numbered migrations per store table:
 *
 *   duo_stores           one row per store: its table name, identity (StoreInfo) and HNSW settings
 *   duo_schema_version   one row per migration applied to a store (store, version, description, applied_at)
 *   <table>              the items: id, vector, metadata, stage-2 regions (one table per store)
 *
 * `migrate` runs the missing migrations of one store in one transaction, under an advisory
 * lock, so processes opening the same database at once apply each exactly once; when nothing
 * is missing it changes nothing. Migrations are append-only: a released one is never edited.
 * The HNSW index is not a migration: the store builds it when the table first holds enough rows.
 */
import type { PoolClient } from 'pg';
import pg from 'pg';
import { createError } from '../errors.js';
import { comparableValues } from './pg-filter.js';
import type { Metadata } from './filter.js';
import type { HnswSettings } from './pg-location.js';
import type { StoreInfo } from './vector-store.js';

/** What a store records about itself in duo_stores. */
export interface StoreRecord {
  info: StoreInfo;
  hnsw: HnswSettings;
}

export interface Migration {
  version: number;
  description: string;
  up(client: PoolClient, table: string, record: StoreRecord): Promise<void>;
}

/** A quoted identifier (names are validated in pg-location.ts as well; identifiers cannot be parameters). */
export const ident = (name: string) => pg.escapeIdentifier(name);

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'items table: id, vector, metadata, stage-2 regions; the store recorded in duo_stores',
    async up(client, table, record) {
      const { rows } = await client.query(`SELECT 1 FROM pg_extension WHERE extname = 'vector'`);
      // CREATE EXTENSION needs a privilege managed services grant differently: skipped when it is there
      if (rows.length === 0) await client.query('CREATE EXTENSION IF NOT EXISTS vector');
      // seq: insertion order, which breaks ties between equal scores; regions: fp16, little-endian
      await client.query(`CREATE TABLE ${ident(table)} (
        seq bigint GENERATED ALWAYS AS IDENTITY,
        id text PRIMARY KEY,
        embedding vector(${Number(record.info.dim)}) NOT NULL,
        metadata jsonb NOT NULL DEFAULT '{}',
        regions bytea
      )`);
      // fp16 does not compress: keep it out of line, uncompressed
      await client.query(`ALTER TABLE ${ident(table)} ALTER COLUMN regions SET STORAGE EXTERNAL`);
      await client.query(`INSERT INTO duo_stores (name, info, hnsw) VALUES ($1, $2, $3)`, [table, record.info, record.hnsw]);
    },
  },
  {
    version: 2,
    description: 'filters in SQL: a comparable column for ranges (backfilled), GIN on metadata, a prefix index on id',
    async up(client, table) {
      const t = ident(table);
      await client.query(`ALTER TABLE ${t} ADD COLUMN comparable jsonb NOT NULL DEFAULT '{}'`);
      for (let after: string | null = null; ; ) {
        const { rows }: pg.QueryResult<{ id: string; metadata: Metadata }> = await client.query(
          `SELECT id, metadata FROM ${t} WHERE $1::text IS NULL OR id > $1 ORDER BY id LIMIT 1000`,
          [after],
        );
        if (rows.length === 0) break;
        await client.query(`UPDATE ${t} SET comparable = c.value FROM unnest($1::text[], $2::jsonb[]) AS c(id, value) WHERE ${t}.id = c.id`, [
          rows.map((r) => r.id),
          rows.map((r) => JSON.stringify(comparableValues(r.id, r.metadata))),
        ]);
        after = rows.at(-1)!.id;
      }
      await client.query(`CREATE INDEX ${ident(`${table}_metadata`)} ON ${t} USING gin (metadata jsonb_path_ops)`);
      await client.query(`CREATE INDEX ${ident(`${table}_id_prefix`)} ON ${t} (id text_pattern_ops)`);
    },
  },
];

export const SCHEMA_VERSION = MIGRATIONS.at(-1)!.version;

/** Creates the catalog tables when missing (what every store of a database shares). */
async function createCatalog(client: PoolClient): Promise<void> {
  await client.query(`CREATE TABLE IF NOT EXISTS duo_stores (
    name text PRIMARY KEY,
    info jsonb NOT NULL,
    hnsw jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
  )`);
  await client.query(`CREATE TABLE IF NOT EXISTS duo_schema_version (
    store text NOT NULL,
    version integer NOT NULL,
    description text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (store, version)
  )`);
}

/** What a table holds: the schema version of its store (0: no store of that name) and its record. */
export async function storeState(client: PoolClient, table: string): Promise<{ version: number; record?: StoreRecord }> {
  const { rows: catalog } = await client.query<{ present: boolean }>(`SELECT to_regclass('duo_schema_version') IS NOT NULL AND to_regclass('duo_stores') IS NOT NULL AS present`);
  if (!catalog[0]?.present) return { version: 0 };
  const { rows } = await client.query<{ version: number | null }>(`SELECT max(version) AS version FROM duo_schema_version WHERE store = $1`, [table]);
  const { rows: records } = await client.query<StoreRecord>(`SELECT info, hnsw FROM duo_stores WHERE name = $1`, [table]);
  return { version: rows[0]?.version ?? 0, record: records[0] };
}

/**
 * Brings one store's table to `target` (default: the latest version), creating it from
 * `create` when it does not exist. Returns the versions it applied ([] when it was current).
 */
export async function migrate(client: PoolClient, table: string, create: StoreRecord | undefined, target = SCHEMA_VERSION): Promise<number[]> {
  const applied: number[] = [];
  await client.query('BEGIN');
  try {
    // one migrator per database at a time: another process opening a store waits here
    await client.query(`SELECT pg_advisory_xact_lock(hashtext('duo-search schema'))`);
    await createCatalog(client);
    const { version: from, record: held } = await storeState(client, table);
    if (from > SCHEMA_VERSION) {
      throw createError('INDEX_FORMAT', table, `its schema is version ${from}, newer than this duo-search knows (${SCHEMA_VERSION}): upgrade duo-search`);
    }
    const record = from === 0 ? create : held;
    if (from === 0 && !record) throw createError('FILE_NOT_FOUND', `table ${table} (no duo store of that name in this database)`);
    for (const m of MIGRATIONS) {
      if (m.version <= from || m.version > target) continue;
      await m.up(client, table, record!);
      await client.query(`INSERT INTO duo_schema_version (store, version, description) VALUES ($1, $2, $3)`, [table, m.version, m.description]);
      applied.push(m.version);
    }
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  }
  return applied;
}
