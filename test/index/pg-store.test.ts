/**
 * The PostgreSQL store against the project's own PostgreSQL (PGlite with pgvector behind
 * pglite-socket, started as `npm run pg` would), reached through `pg`: the store contract
 * (exact below the HNSW threshold, HNSW with vector and halfvec graphs), migrations, model
 * identity, batching, several stores in one database, and readers beside a writer.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { DuoError } from '../../src/errors.js';
import { imageIndexInfo } from '../../src/index/build-index.js';
import { indexImages } from '../../src/index/index-images.js';
import { openStore } from '../../src/index/open-store.js';
import { filterToSql } from '../../src/index/pg-filter.js';
import { DEFAULT_HNSW } from '../../src/index/pg-location.js';
import { migrate, SCHEMA_VERSION } from '../../src/index/pg-schema.js';
import { pgSessionSetup, PgStore } from '../../src/index/pg-store.js';
import type { VectorStore } from '../../src/index/vector-store.js';
import type { Encoder } from '../../src/models/encoder.js';
import { fixtureModelPath, loadEncoder } from '../../src/models/load-encoder.js';
import { openEngine } from '../../src/search/open-engine.js';
import { packageRoot } from '../../src/util/package-root.js';
import { contractInfo, randomUnit, runVectorStoreContract } from '../contracts/vector-store.contract.js';
import { COLOURS, tempDir, writeColourImage } from '../helpers.js';
import { startPgProcess, storeUrl, type PgProcess } from './pg-helpers.js';

const code = (c: string) => (e: unknown) => e instanceof DuoError && e.code === c;
const data = tempDir('duo-pg-');
let server: PgProcess;
let n = 0;
const table = (prefix: string) => `${prefix}_${++n}`;

before(async () => {
  server = await startPgProcess(data);
});
after(async () => {
  assert.equal(await server.stop(), 0, `the server stops cleanly on SIGTERM:\n${server.output()}`);
});

/** the CLI from its TypeScript sources (the compiled bin is tested in test/cli) */
const run = async (args: string[]) => {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ['--import', 'tsx', join(packageRoot(), 'src', 'cli', 'main.ts'), ...args], { cwd: packageRoot() });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
};

const reopen = async (store: VectorStore) => {
  await store.close();
  return openStore(store.location);
};

runVectorStoreContract('PgStore, exact scan (below the HNSW threshold)', {
  make: (info) => openStore(storeUrl(server, table('exact')), { write: true, create: info }),
  reopen,
});
runVectorStoreContract('PgStore, HNSW on the vectors', {
  make: (info) => openStore(storeUrl(server, table('hnsw'), 'hnsw_min_rows=0'), { write: true, create: info }),
  reopen,
  recall: 0.9,
});
runVectorStoreContract('PgStore, HNSW on half-precision copies', {
  make: (info) => openStore(storeUrl(server, table('half'), 'hnsw_min_rows=0&hnsw_type=halfvec&ef_search=20'), { write: true, create: info }),
  reopen,
  recall: 0.9,
});

runVectorStoreContract('PgStore, one statement per query (as on Citus), HNSW', {
  make: (info) => {
    const name = table('each');
    return PgStore.open(new pg.Pool({ connectionString: server.url, max: 4, onConnect: pgSessionSetup(100) }), name, { write: true, create: info, hnsw: { minRows: 0 }, efSearch: 100, batchQueries: false }, { ownsPool: true, location: storeUrl(server, name) });
  },
  reopen,
  recall: 0.9,
});

const item = (i: number, dim = 8) => ({ id: `img-${i}`, vector: randomUnit(dim, i + 1), metadata: { n: i, taken: `2024-02-${String((i % 28) + 1).padStart(2, '0')}` } });

describe('PgStore', () => {
  let admin: pg.Pool;
  before(() => {
    admin = new pg.Pool({ connectionString: server.url, max: 2 });
  });
  after(() => admin.end());

  it('migrates by version: a new store gets every migration once, a second run changes nothing, an older store is brought forward', async () => {
    const name = table('migrated');
    const store = await openStore(storeUrl(server, name), { write: true, create: contractInfo(8) });
    await store.close();
    const versions = async (t: string) => (await admin.query(`SELECT version FROM duo_schema_version WHERE store = $1 ORDER BY version`, [t])).rows.map((r) => r.version);
    assert.deepEqual(await versions(name), [1, 2]);
    assert.equal(SCHEMA_VERSION, 2);
    const client = await admin.connect();
    try {
      assert.deepEqual(await migrate(client, name, undefined), [], 'running again is a no-op');
      // a store left at version 1 (no comparable column yet) with a row written then
      const old = table('old');
      assert.deepEqual(await migrate(client, old, { info: contractInfo(8), hnsw: DEFAULT_HNSW }, 1), [1]);
      await client.query(`INSERT INTO ${old} (id, embedding, metadata) VALUES ('a', $1, $2), ('b', $3, $4)`, [
        `[${Array.from(item(1).vector).join(',')}]`,
        { taken: '2024-05-01', n: 3 },
        `[${Array.from(item(2).vector).join(',')}]`,
        { taken: '2023-05-01', n: 30 },
      ]);
      const reopened = await openStore(storeUrl(server, old));
      assert.deepEqual(await versions(old), [1, 2], 'opening it applied version 2');
      assert.equal(await reopened.count({ taken: { gte: '2024-01-01' } }), 1, 'version 2 filled the comparable values of existing rows');
      assert.equal(await reopened.count({ n: { gt: 10 } }), 1);
      await reopened.close();
      // a schema newer than this code is refused, not touched
      await client.query(`INSERT INTO duo_schema_version (store, version, description) VALUES ($1, 99, 'from the future')`, [old]);
      await assert.rejects(openStore(storeUrl(server, old)), code('INDEX_FORMAT'));
    } finally {
      client.release();
    }
  });

  it('records the model: a search engine opens the URL with the recorded model, refuses another, and the CLI searches it', async () => {
    const root = tempDir('duo-pg-images-');
    const names = Object.keys(COLOURS);
    await Promise.all(names.map((c) => writeColourImage(join(root, `${c}.jpg`), COLOURS[c]!)));
    const encoder = await loadEncoder(fixtureModelPath());
    const url = storeUrl(server, table('colours'));
    try {
      const store = await openStore(url, { write: true, create: await imageIndexInfo({ root, encoder, modelSpec: fixtureModelPath() }) });
      await indexImages(store, names.map((c) => ({ id: `${c}.jpg`, source: join(root, `${c}.jpg`), metadata: { colour: c } })), { encoder });
      await store.close();
      const engine = await openEngine({ index: url, encoder, reranker: 'none' });
      const [r] = await engine.search([{ text: 'a red thing' }], { k: 3, where: { colour: { in: ['red', 'blue'] } } });
      assert.deepEqual(r!.results.map((h) => h.id), ['red.jpg', 'blue.jpg']);
      await engine.close();
      const other = { ...encoder, id: 'another-model@1' } as Encoder;
      await assert.rejects(openEngine({ index: url, encoder: other, reranker: 'none' }), code('INDEX_MODEL_MISMATCH'));
      await assert.rejects(openStore(url, { write: true, create: contractInfo(encoder.dim, { modelId: 'another-model@1' }) }), code('INDEX_MODEL_MISMATCH'));
    } finally {
      await encoder.dispose();
    }
    const cli = await run(['search', 'a red thing', '--index', url, '--k', '2', '--json', '--mode', 'hybrid', '--reranker', join(packageRoot(), 'models', 'colour-blip')]);
    assert.equal(cli.code, 0, cli.stderr);
    const out = JSON.parse(cli.stdout);
    assert.equal(out.results[0].id, 'red.jpg');
    assert.ok(out.results[0].stage2, 'stage 2 scored the candidates read from PostgreSQL');
    await assert.rejects(openStore(storeUrl(server, 'no_such_table')), code('FILE_NOT_FOUND'));
  });

  it('duo index writes to a URL as to a folder: resumable, the cross-encoder recorded and used by search', async () => {
    const root = tempDir('duo-pg-index-');
    const names = Object.keys(COLOURS);
    await Promise.all(names.map((c) => writeColourImage(join(root, `${c}.jpg`), COLOURS[c]!)));
    const url = storeUrl(server, table('indexed'));
    const blip = join(packageRoot(), 'models', 'colour-blip');
    const first = await run(['index', root, '--index', url, '--model', fixtureModelPath(), '--reranker', blip, '--json']);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(JSON.parse(first.stdout).encoded, names.length);
    const again = await run(['index', root, '--index', url, '--model', fixtureModelPath(), '--json']);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual([JSON.parse(again.stdout).encoded, JSON.parse(again.stdout).reused], [0, names.length], 'a rerun encodes nothing');
    const found = await run(['search', 'a green thing', '--index', url, '--mode', 'hybrid', '--k', '1', '--json']);
    assert.equal(found.code, 0, found.stderr);
    assert.equal(JSON.parse(found.stdout).results[0].id, 'green.jpg');
    assert.match(JSON.parse(found.stdout).reranker, /colour-blip/, 'the recorded cross-encoder, with no --reranker');
  });

  it('sends filter keys and values as parameters only: hostile ones reach no SQL text', async () => {
    const hostile = `x'); DROP TABLE duo_stores; --`;
    const params: unknown[] = [];
    const sql = filterToSql({ [hostile]: hostile, id: { prefix: `${hostile}%_` }, n: { in: [hostile, 3] }, taken: { gte: '2024-01-01' } }, params);
    assert.ok(!sql.includes('DROP') && !sql.includes("'x"), sql);
    assert.ok(params.some((p) => String(p).includes(hostile)));
    const store = await openStore(storeUrl(server, table('hostile')), { write: true, create: contractInfo(8) });
    await store.upsert([item(1), { ...item(2), id: `${hostile}%_a`, metadata: { [hostile]: hostile } }]);
    assert.equal(await store.count({ [hostile]: hostile }), 1);
    assert.equal(await store.count({ id: { prefix: `${hostile}%_` } }), 1, 'LIKE wildcards in a prefix are literal');
    assert.equal(await store.count({ id: { prefix: `x'); DROP TABLE duo_stores; --_` } }), 0);
    assert.equal((await admin.query(`SELECT count(*)::int AS n FROM duo_stores`)).rows[0].n > 0, true);
    await store.close();
  });

  it('keeps several stores in one database, one table each, and never shows a password in its location', async () => {
    const [a, b] = [table('photos'), table('captions')];
    const withPassword = server.url.replace('postgres@', 'postgres:s3cret@');
    const one = await openStore(`${withPassword}?table=${a}`, { write: true, create: contractInfo(8) });
    const two = await openStore(storeUrl(server, b), { write: true, create: contractInfo(16, { items: 'captions', modelId: 'model-c@1' }) });
    assert.ok(!one.location.includes('s3cret'), one.location);
    assert.match(one.location, new RegExp(`^postgres://postgres@127\\.0\\.0\\.1:\\d+/postgres\\?table=${a}$`));
    await one.upsert([item(0), item(1), item(2)]);
    await two.upsert([item(0, 16)]);
    assert.deepEqual([await one.count(), await two.count()], [3, 1]);
    assert.equal(two.info.dim, 16);
    const { rows } = await admin.query(`SELECT name, info->>'modelId' AS model FROM duo_stores WHERE name = ANY($1) ORDER BY name`, [[a, b]]);
    assert.deepEqual(rows, [{ name: b, model: 'model-c@1' }, { name: a, model: 'model-a@1' }].sort((x, y) => x.name.localeCompare(y.name)));
    await one.close();
    await two.close();
  });

  it('writes large upserts in batches inside one transaction (the last of repeated ids wins), and shares a caller pool', async () => {
    const pool = new pg.Pool({ connectionString: server.url, max: 2 });
    const name = table('batched');
    const store = await PgStore.open(pool, name, { write: true, create: contractInfo(8) });
    const items = Array.from({ length: 1203 }, (_, i) => item(i));
    await store.upsert([...items, { ...item(5), metadata: { n: -5 } }]);
    assert.equal(await store.count(), 1203);
    assert.deepEqual((await store.get(['img-5']))[0]!.metadata, { n: -5 });
    const listed: string[] = [];
    for await (const { id } of store.list()) listed.push(id);
    assert.equal(new Set(listed).size, 1203, 'list pages through every row once');
    await store.close();
    // the store did not end a pool it did not create
    assert.equal((await pool.query('SELECT count(*)::int AS n FROM ' + name)).rows[0].n, 1203);
    await pool.end();
  });

  it('builds the HNSW graph at the flush that reaches hnsw_min_rows, in the shape searches use', async () => {
    const name = table('threshold');
    const store = await openStore(storeUrl(server, name, 'hnsw_min_rows=1000'), { write: true, create: contractInfo(8) });
    const hnsw = async () => (await admin.query(`SELECT indexdef FROM pg_indexes WHERE indexname = $1`, [`${name}_hnsw`])).rows.length;
    await store.upsert(Array.from({ length: 999 }, (_, i) => item(i)));
    await store.flush();
    assert.equal(await hnsw(), 0, 'below the threshold: exact scans');
    await store.upsert(Array.from({ length: 1001 }, (_, i) => item(i + 999)));
    assert.equal(await hnsw(), 0, 'built at a flush, not in the middle of writing');
    await store.flush();
    assert.equal(await hnsw(), 1);
    // the store's query shape is one the index serves (at 2,000 8-d rows the planner still prefers a scan)
    const client = await admin.connect();
    try {
      await client.query('BEGIN');
      await client.query('SET LOCAL enable_seqscan = off');
      const plan = await client.query(
        `EXPLAIN SELECT h.id FROM unnest($1::vector[]) AS q(v) CROSS JOIN LATERAL (SELECT id FROM ${name} ORDER BY embedding <#> q.v, seq LIMIT 10) AS h`,
        [[`[${Array.from(randomUnit(8, 5)).join(',')}]`]],
      );
      assert.match(plan.rows.map((r) => r['QUERY PLAN']).join('\n'), new RegExp(`Index Scan using ${name}_hnsw`));
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
    // filtered: every match is returned even when the filter keeps a few rows far from the query
    const [hits] = await store.search([randomUnit(8, 5)], 10, { filter: { n: { in: [3, 500, 1998] } } });
    assert.deepEqual(hits!.map((h) => h.id).sort(), ['img-1998', 'img-3', 'img-500']);
    const [dated] = await store.search([randomUnit(8, 5)], 50, { filter: { taken: { gte: '2024-02-28' } } });
    assert.equal(dated!.length, 50);
    assert.ok(dated!.every((h) => Number(h.id.slice(4)) % 28 === 27));
    await store.close();
  });

  it('serves readers on other connections while a writer appends: each sees whole batches, never half of one', async () => {
    const url = storeUrl(server, table('concurrent'), 'hnsw_min_rows=0');
    const writer = await openStore(url, { write: true, create: contractInfo(8) });
    const reader = await openStore(url);
    const batches = 12;
    const size = 40;
    let done = false;
    const seen: number[] = [];
    const reading = (async () => {
      while (!done) {
        const [count, [hits]] = await Promise.all([reader.count(), reader.search([randomUnit(8, 99)], 5)]);
        seen.push(count);
        assert.equal(count % size, 0, `a reader saw ${count} rows: part of a batch`);
        assert.ok(hits!.length <= Math.max(count, 5));
      }
    })();
    for (let b = 0; b < batches; b++) await writer.upsert(Array.from({ length: size }, (_, i) => item(b * size + i)));
    done = true;
    await reading;
    assert.ok(seen.length >= 2, `the reader ran alongside (${seen.length} reads)`);
    assert.ok(seen.every((c, i) => i === 0 || c >= seen[i - 1]!), 'counts never go back');
    assert.equal(await reader.count(), batches * size, 'a reader sees every committed write, without reopening');
    await writer.close();
    await reader.close();
  });
});

describe('npm run pg (the local server)', () => {
  it('keeps concurrent connections apart: parameters of one never bind to another (pglite-socket issue 1046)', async () => {
    const pool = new pg.Pool({ connectionString: server.url, max: 4 });
    const big = 'x'.repeat(200_000); // split over several TCP reads, so messages of other connections could slip in between
    const answers = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        i % 2 ? pool.query('SELECT length($1::text) + $2::int AS v', [big, i]).then((r) => r.rows[0].v - big.length) : pool.query('SELECT $1::int AS v, $2::text AS s', [i, 'y']).then((r) => r.rows[0].v),
      ),
    );
    assert.deepEqual(answers, Array.from({ length: 60 }, (_, i) => i));
    await pool.end();
  });

  it('refuses a connection over --max-connections with a PostgreSQL error, and keeps its data across a restart', async () => {
    const dir = tempDir('duo-pg-restart-');
    let local = await startPgProcess(dir, ['--max-connections', '1']);
    try {
      const first = new pg.Client({ connectionString: local.url });
      await first.connect();
      const second = new pg.Client({ connectionString: local.url });
      await assert.rejects(second.connect(), (e: { code?: string }) => e.code === '53300');
      await first.end();
      const store = await openStore(`${local.url}?table=kept&pool_max=1`, { write: true, create: contractInfo(8) });
      await store.upsert([item(1), item(2)]);
      await store.close();
      assert.equal(await local.stop(), 0);
      assert.match(local.output(), /stopped/);
      local = await startPgProcess(dir, ['--max-connections', '1']);
      const again = await openStore(`${local.url}?table=kept&pool_max=1`);
      assert.equal(await again.count(), 2);
      assert.equal((await again.search([item(2).vector], 1))[0]![0]!.id, 'img-2');
      await again.close();
    } finally {
      await local.stop();
    }
  });
});
