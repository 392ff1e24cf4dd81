/**
 * The pgvector rows of the store benchmark: the PostgreSQL store (src/index/pg-store.ts) on
 * the project's local PostgreSQL (PGlite + pgvector behind pglite-socket, `npm run pg`),
 * measured like the others (bench/stores-shared.ts): build time (upserts of 100k-row blocks,
 * then the flush that builds the HNSW graph in one pass), peak RSS, size on disk, query latency
 * p50/p95 for one query and for batches of 32, recall@10 against exact, filtered queries, and
 * recall and latency at several ef_search values.
 *
 * The database runs in its own process (a child, as `npm run pg` would run it): the peak RSS
 * given is that server's (VmHWM), once while building and once in a fresh server that only
 * answers queries; the client's own is in the note. Size on disk is the table with its
 * indexes and TOAST (pg_total_relation_size); the data folder, WAL and catalogs included, is
 * in the note.
 *
 * As a hook: bench/stores.bench.ts calls the default export. Standalone:
 *   npx tsx bench/stores-pg.ts [--datasets 256d-100k,512d-100k] [--types vector,halfvec]
 * writes bench/results/stores-pg.json. 256d-1M is skipped unless DUO_BENCH_PG_1M=1: PGlite is
 * PostgreSQL compiled to 32-bit WebAssembly on one thread, and at its 100k rate 1M takes well
 * over the benchmark's time (see `skipped`).
 * DUO_BENCH_PG=cached makes the hook return the rows of bench/results/stores-pg.json instead.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { openPgStore, type PgStore } from '../src/index/pg-store.js';
import { packageRoot } from '../src/util/package-root.js';
import { startPgProcess, type PgProcess } from '../test/index/pg-helpers.js';
import { BLOCK, DATASETS, FILTERS, findDataset, generator, idOf, latency, metadataOf, queriesOf, recallAt10, round, truthOf, type DatasetSpec, type FilterName, type StoreBenchContext, type StoreRow } from './stores-shared.js';

const RESULTS = join(packageRoot(), 'bench', 'results', 'stores-pg.json');
const HNSW = { m: 16, efConstruction: 64, efSearch: 100 };
const SWEEP = [40, 64, 100, 200];

type PgType = 'vector' | 'halfvec';

/** A process's peak resident set in MB (Linux /proc). */
function peakRssMB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmHWM:\s+(\d+)\s+kB/.exec(status)?.[1] ?? NaN);
  return round(kb / 1024, 0);
}

const duMB = (dir: string) => round(Number(execFileSync('du', ['-sk', dir]).toString().split('\t')[0]) / 1024, 1);
const url = (server: PgProcess, type: PgType, efSearch = HNSW.efSearch) =>
  `${server.url}?table=bench&hnsw_type=${type}&m=${HNSW.m}&ef_construction=${HNSW.efConstruction}&ef_search=${efSearch}&pool_max=2`;

async function timeQueries(store: PgStore, qs: Float32Array[], filter?: FilterName) {
  const ms: number[] = [];
  const found: string[][] = [];
  for (const q of qs) {
    const t = performance.now();
    const [hits] = await store.search([q], 10, filter ? { filter: FILTERS[filter].where } : {});
    ms.push(performance.now() - t);
    found.push(hits!.map((h) => h.id));
  }
  return { ms, found };
}

async function measure(ctx: StoreBenchContext, d: DatasetSpec, type: PgType): Promise<StoreRow> {
  const data = join(ctx.workDir, `${d.name}-${type}`);
  rmSync(data, { recursive: true, force: true });
  mkdirSync(data, { recursive: true });
  const info = { items: 'images' as const, modelId: 'bench@synthetic', modelSpec: 'bench', dim: d.dim, root: '/photos' };

  // build: upserts block by block, then the flush that builds the graph (close flushes)
  let server = await startPgProcess(data);
  let upsertMs = 0;
  const store = await openPgStore(url(server, type), { write: true, create: info });
  for (let start = 0; start < d.n; start += BLOCK) {
    const count = Math.min(BLOCK, d.n - start);
    const rows = ctx.rowsOf(d, start, count); // generating the data is not counted
    const items = Array.from({ length: count }, (_, i) => ({ id: idOf(start + i), vector: rows.subarray(i * d.dim, (i + 1) * d.dim), metadata: metadataOf(start + i) }));
    const t = performance.now();
    await store.upsert(items);
    upsertMs += performance.now() - t;
    console.error(`  pgvector ${type} ${d.name}: ${start + count} rows, ${round(upsertMs / 1000, 1)} s`);
  }
  let t = performance.now();
  await store.flush();
  const indexMs = performance.now() - t;
  const tableMB = round((await store.sizeOnDisk()) / 2 ** 20, 1);
  await store.close();
  const buildPeakRssMB = peakRssMB(server.child.pid!);
  await server.stop();
  console.error(`  pgvector ${type} ${d.name}: graph built in ${round(indexMs / 1000, 1)} s; server peak RSS ${buildPeakRssMB} MB`);

  // serve: a fresh server process that only answers queries
  server = await startPgProcess(data);
  try {
    const truth = await ctx.truthOf(d);
    const qs = ctx.queriesOf(d);
    t = performance.now();
    let reader = await openPgStore(url(server, type));
    const openMs = round(performance.now() - t, 1);
    await timeQueries(reader, qs.slice(0, 50)); // warm up: the buffer cache holds what queries touch
    const single = await timeQueries(reader, qs);
    const batches: number[] = [];
    for (let r = 0; r < 2; r++) {
      for (let i = 0; i < qs.length; i += 32) {
        t = performance.now();
        await reader.search(qs.slice(i, i + 32), 10);
        batches.push(performance.now() - t);
      }
    }
    const filtered: StoreRow['filtered'] = {};
    for (const f of Object.keys(FILTERS) as FilterName[]) {
      const r = await timeQueries(reader, qs.slice(0, 100), f);
      filtered[f] = { ...latency(r.ms), recallAt10: round(recallAt10(r.found, truth.filtered[f].slice(0, 100)), 4) };
    }
    const servePeakRssMB = peakRssMB(server.child.pid!);
    const sweep: object[] = [];
    for (const ef of SWEEP) {
      await reader.close();
      reader = await openPgStore(url(server, type, ef));
      await timeQueries(reader, qs.slice(0, 50));
      const r = await timeQueries(reader, qs);
      sweep.push({ expansionSearch: ef, ...latency(r.ms), recallAt10: round(recallAt10(r.found, truth.all), 4) });
    }
    await reader.close();
    return {
      dataset: d.name,
      n: d.n,
      dim: d.dim,
      store: 'pgvector',
      quantization: type,
      connectivity: HNSW.m,
      expansionAdd: HNSW.efConstruction,
      expansionSearch: HNSW.efSearch,
      buildSeconds: round((upsertMs + indexMs) / 1000, 1),
      buildPeakRssMB,
      servePeakRssMB,
      diskMB: tableMB,
      openMs,
      single: latency(single.ms),
      batch32: latency(batches),
      recallAt10: round(recallAt10(single.found, truth.all), 4),
      filtered,
      commit: ctx.commit,
      note:
        `PGlite 0.5.14 (PostgreSQL 18, pgvector 0.8, 32-bit WebAssembly, one thread) through pglite-socket and pg; ` +
        `upserts ${round(upsertMs / 1000, 1)} s + HNSW build ${round(indexMs / 1000, 1)} s; data folder ${duMB(data)} MB; ` +
        `client peak RSS ${round(process.resourceUsage().maxRSS / 1024, 0)} MB`,
      ...{ sweep },
    } as StoreRow;
  } finally {
    await server.stop();
  }
}

const skipped = (d: DatasetSpec): string | undefined =>
  d.n >= 1_000_000 && process.env.DUO_BENCH_PG_1M !== '1'
    ? 'not run: at the 100k rate on this machine (48 s of upserts, 61 s for the graph, PGlite being one thread of 32-bit WebAssembly) 1M would take over 8 minutes of upserts and 10 of graph building, more once the graph (about 1.4 GB) outgrows maintenance_work_mem; set DUO_BENCH_PG_1M=1 to run it'
    : undefined;

export async function runPgvector(ctx: StoreBenchContext, types: PgType[] = ['vector']): Promise<StoreRow[]> {
  const rows: StoreRow[] = [];
  for (const d of ctx.datasets) {
    const why = skipped(d);
    if (why) {
      console.error(`pgvector ${d.name}: ${why}`);
      continue;
    }
    for (const type of types) {
      console.error(`pgvector ${type} ${d.name}: building…`);
      rows.push(await measure(ctx, d, type));
    }
  }
  return rows;
}

/** The hook bench/stores.bench.ts calls (see stores-shared.ts). */
export default async function pgvectorRows(ctx: StoreBenchContext): Promise<StoreRow[]> {
  if (process.env.DUO_BENCH_PG === 'cached' && existsSync(RESULTS)) {
    const names = new Set(ctx.datasets.map((d) => d.name));
    return (JSON.parse(readFileSync(RESULTS, 'utf8')) as { rows: StoreRow[] }).rows.filter((r) => names.has(r.dataset));
  }
  return runPgvector(ctx);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  const { values } = parseArgs({ options: { datasets: { type: 'string', default: DATASETS.map((d) => d.name).join(',') }, types: { type: 'string', default: 'vector' } } });
  const work = join(packageRoot(), 'runs', 'bench-stores');
  const datasets = values.datasets.split(',').map((name) => {
    const d = findDataset(name);
    if (!d) throw new Error(`unknown dataset ${name}: ${DATASETS.map((x) => x.name).join(', ')}`);
    return d;
  });
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: packageRoot() }).toString().trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src/index/pg-store.ts', 'src/index/pg-schema.ts', 'src/index/pg-filter.ts', 'src/index/pg-location.ts', 'src/dev', 'bench/stores-pg.ts'], { cwd: packageRoot() }).toString().trim();
    if (dirty) commit += '+changes';
  } catch {
    // not a git checkout: the commit stays unknown
  }
  const ctx: StoreBenchContext = { datasets, workDir: join(work, 'pg'), commit, queriesOf, truthOf: (d) => truthOf(d, work), rowsOf: (d, start, count) => generator(d).rows(start, count) };
  const rows = await runPgvector(ctx, values.types.split(',') as PgType[]);
  const previous = existsSync(RESULTS) ? (JSON.parse(readFileSync(RESULTS, 'utf8')) as { rows: StoreRow[] }).rows : [];
  const key = (r: StoreRow) => `${r.dataset}/${r.quantization}`;
  const ran = new Set(rows.map(key));
  const skippedNotes = DATASETS.flatMap((d) => (skipped(d) ? [{ dataset: d.name, note: skipped(d) }] : []));
  writeFileSync(RESULTS, `${JSON.stringify({ when: new Date().toISOString(), rows: [...previous.filter((r) => !ran.has(key(r))), ...rows], skipped: skippedNotes }, null, 2)}\n`);
  for (const r of rows) {
    console.log(
      `${r.dataset} pgvector ${r.quantization}: build ${r.buildSeconds} s, build RSS ${r.buildPeakRssMB} MB, serve RSS ${r.servePeakRssMB} MB, disk ${r.diskMB} MB, ` +
        `1 query p50/p95 ${r.single.p50}/${r.single.p95} ms, 32 queries ${r.batch32.p50}/${r.batch32.p95} ms, recall@10 ${r.recallAt10}, ` +
        `10% ${r.filtered?.['10%']?.p95} ms/${r.filtered?.['10%']?.recallAt10}, 1% ${r.filtered?.['1%']?.p95} ms/${r.filtered?.['1%']?.recallAt10} (${r.commit})`,
    );
  }
}
