/**
 * The stores side by side: exact and usearch HNSW (f32, f16, i8) over clustered synthetic
 * embeddings (bench/stores-data.ts) at 100k and 1M × 256-d and 100k × 512-d. For each store:
 * build time (upserts of 100k rows, each flushed, then close), peak RSS of the build and of the
 * serving process, size on disk, open time, query latency p50/p95 (one query, and batches of
 * 32), recall@10 against the exact top 10 of 500 held-out queries, and filtered queries (10%
 * and 1% of the rows pass; the first 100 queries). HNSW stores are also searched at several
 * expansions (the trade-off behind the defaults in src/index/ann.ts). Every build and every
 * serving run is its own child process, so each peak RSS is that configuration's alone.
 *
 * pgvector rows come from bench/stores-pg.ts when that file exists (see stores-shared.ts).
 *
 * Run: npm run bench:stores [-- --datasets 256d-100k,512d-100k --stores exact,f32,f16,i8 --sweep 32,64,96,128,192]
 * Writes bench/results/stores.json (rows of datasets not run this time are kept) and prints a table.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { formatTable } from '../src/cli/output.js';
import { DEFAULT_HNSW, type AnnSettings, type Quantization } from '../src/index/ann.js';
import { FolderStore } from '../src/index/folder-store.js';
import { packageRoot } from '../src/util/package-root.js';
import {
  BLOCK,
  DATASETS,
  FILTERS,
  findDataset,
  generator,
  idOf,
  latency,
  metadataOf,
  queriesOf,
  recallAt10,
  round,
  truthOf,
  type DatasetSpec,
  type FilterName,
  type StoreBenchContext,
  type StoreRow,
} from './stores-shared.js';

const WORK = join(packageRoot(), 'runs', 'bench-stores');
const RESULTS = join(packageRoot(), 'bench', 'results', 'stores.json');
const PG_HOOK = join(packageRoot(), 'bench', 'stores-pg.ts');

const { values } = parseArgs({
  options: {
    datasets: { type: 'string', default: DATASETS.map((d) => d.name).join(',') },
    stores: { type: 'string', default: 'exact,f32,f16,i8' },
    sweep: { type: 'string', default: '64,96,128,192,256,384' },
    connectivity: { type: 'string', default: String(DEFAULT_HNSW.connectivity) },
    'expansion-add': { type: 'string', default: String(DEFAULT_HNSW.expansionAdd) },
    'expansion-search': { type: 'string', default: String(DEFAULT_HNSW.expansionSearch) },
    child: { type: 'string' },
    dataset: { type: 'string' },
    store: { type: 'string' },
    keep: { type: 'boolean', default: false },
    /** measure indexes kept by an earlier --keep run again (their build numbers are taken from the results file) */
    'serve-only': { type: 'boolean', default: false },
  },
});

const settingsOf = (store: string): AnnSettings =>
  store === 'exact'
    ? { kind: 'exact' }
    : { kind: 'hnsw', quantization: store as Quantization, connectivity: Number(values.connectivity), expansionAdd: Number(values['expansion-add']), expansionSearch: Number(values['expansion-search']) };
const peakRssMB = () => round(process.resourceUsage().maxRSS / 1024, 0);
const indexPath = (d: DatasetSpec, store: string) => join(WORK, `${d.name}-${store}.duo`);
const diskMB = (path: string) => round(readdirSync(path).reduce((a, f) => a + statSync(join(path, f)).size, 0) / 2 ** 20, 1);

/** Child: builds one store, reports its build time and peak RSS. */
async function build(d: DatasetSpec, store: string): Promise<object> {
  const path = indexPath(d, store);
  rmSync(path, { recursive: true, force: true });
  const gen = generator(d);
  const info = { items: 'images' as const, modelId: 'bench@synthetic', modelSpec: 'bench', dim: d.dim, root: '/photos' };
  let spent = 0;
  let t = performance.now();
  const s = await FolderStore.open(path, { write: true, create: info, ann: settingsOf(store) });
  spent += performance.now() - t;
  for (let start = 0; start < d.n; start += BLOCK) {
    const count = Math.min(BLOCK, d.n - start);
    const rows = gen.rows(start, count); // generating the data is not counted
    const items = Array.from({ length: count }, (_, i) => ({ id: idOf(start + i), vector: rows.subarray(i * d.dim, (i + 1) * d.dim), metadata: metadataOf(start + i) }));
    t = performance.now();
    await s.upsert(items);
    await s.flush();
    spent += performance.now() - t;
    console.error(`  ${d.name} ${store}: ${start + count} rows, ${round(spent / 1000, 1)} s`);
  }
  t = performance.now();
  await s.close();
  spent += performance.now() - t;
  return { buildSeconds: round(spent / 1000, 1), buildPeakRssMB: peakRssMB(), diskMB: diskMB(path) };
}

async function timeQueries(s: FolderStore, qs: Float32Array[], filter?: FilterName): Promise<{ ms: number[]; found: string[][] }> {
  const ms: number[] = [];
  const found: string[][] = [];
  const options = filter ? { filter: FILTERS[filter].where } : {};
  for (const q of qs) {
    const t = performance.now();
    const [hits] = await s.search([q], 10, options);
    ms.push(performance.now() - t);
    found.push(hits!.map((h) => h.id));
  }
  return { ms, found };
}

/** Child: opens a built store read-only and measures queries (and, for HNSW, the expansion sweep). */
async function serve(d: DatasetSpec, store: string): Promise<object> {
  const path = indexPath(d, store);
  const truth = await truthOf(d, WORK);
  const qs = queriesOf(d);
  let t = performance.now();
  let s = await FolderStore.open(path);
  const openMs = round(performance.now() - t, 1);
  const info = s.scanInfo();
  if (info.graph && info.graph.state !== 'current') throw new Error(`${path}: graph ${info.graph.state} on open (${info.graph.problem ?? ''})`);
  // warm: one pass first pages in what the queries touch (the mapped graph, the rows re-scoring reads)
  await timeQueries(s, qs);
  const single = await timeQueries(s, qs);
  const batches: number[] = [];
  for (let round2 = 0; round2 < 2; round2++) {
    for (let i = 0; i < qs.length; i += 32) {
      t = performance.now();
      await s.search(qs.slice(i, i + 32), 10);
      batches.push(performance.now() - t);
    }
  }
  const filtered: Record<string, object> = {};
  for (const f of Object.keys(FILTERS) as FilterName[]) {
    // the first 100 queries: an exact scan that gathers the passing rows takes up to a second over 1M
    const r = await timeQueries(s, qs.slice(0, 100), f);
    filtered[f] = { ...latency(r.ms), recallAt10: round(recallAt10(r.found, truth.filtered[f].slice(0, 100)), 4) };
  }
  const plans = s.scanInfo().graph?.plans;
  // before the sweep: each reopening maps the graph again, and an old mapping is released only when collected
  const servePeakRssMB = peakRssMB();
  const sweep: object[] = [];
  if (s.ann.kind === 'hnsw') {
    for (const ef of values.sweep!.split(',').map(Number)) {
      await s.close();
      s = await FolderStore.open(path, { ann: { annExpansion: ef, count: 0 } });
      await timeQueries(s, qs.slice(0, 100));
      const r = await timeQueries(s, qs);
      sweep.push({ expansionSearch: ef, ...latency(r.ms), recallAt10: round(recallAt10(r.found, truth.all), 4) });
    }
  }
  await s.close();
  return {
    openMs,
    graphMapped: info.graph?.mapped,
    single: latency(single.ms),
    batch32: latency(batches),
    recallAt10: round(recallAt10(single.found, truth.all), 4),
    filtered,
    plans,
    sweep,
    servePeakRssMB,
  };
}

/** Runs this file as a child and returns the JSON object it prints last. */
function child(args: string[]): Promise<Record<string, unknown>> {
  return new Promise((resolvePromise, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (b: Buffer) => (out += b.toString()));
    p.on('error', reject);
    p.on('close', (code) => {
      if (code !== 0) return reject(new Error(`child ${args.join(' ')} exited ${code}`));
      resolvePromise(JSON.parse(out.trim().split('\n').pop()!) as Record<string, unknown>);
    });
  });
}

const commitOf = () => {
  try {
    const sha = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: packageRoot() }).toString().trim();
    // the files the measured code comes from (other work in progress elsewhere does not count)
    const used = ['src/index', 'src/models/encoder.ts', 'bench/stores.bench.ts', 'bench/stores-shared.ts', 'bench/stores-data.ts'];
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no', '--', ...used], { cwd: packageRoot() })
      .toString()
      .split('\n')
      .filter((l) => l.trim() && !/(open-store|pg-[a-z-]+)\.ts$/.test(l))
      .join('');
    return dirty ? `${sha}+changes` : sha;
  } catch {
    return 'unknown';
  }
};

async function main(): Promise<void> {
  if (values.child) {
    const d = findDataset(values.dataset!)!;
    const out = values.child === 'build' ? await build(d, values.store!) : values.child === 'truth' ? (await truthOf(d, WORK), {}) : await serve(d, values.store!);
    console.log(JSON.stringify(out));
    return;
  }
  mkdirSync(WORK, { recursive: true });
  const commit = commitOf();
  const datasets = values.datasets!.split(',').map((name) => {
    const d = findDataset(name);
    if (!d) throw new Error(`unknown dataset ${name}: ${DATASETS.map((x) => x.name).join(', ')}`);
    return d;
  });
  const previous = existsSync(RESULTS) ? (JSON.parse(readFileSync(RESULTS, 'utf8')) as { rows?: StoreRow[]; pgvector?: unknown }) : {};
  const rowKey = (r: Pick<StoreRow, 'dataset' | 'store' | 'quantization'>) => `${r.dataset}/${r.store}/${r.quantization ?? ''}`;
  const rows: (StoreRow & { sweep?: object[]; plans?: object })[] = [];
  for (const d of datasets) {
    console.error(`${d.name}: exact answers for the held-out queries…`);
    await child(['--child', 'truth', '--dataset', d.name]);
    for (const store of values.stores!.split(',')) {
      const ann = settingsOf(store);
      const key = rowKey({ dataset: d.name, store: store === 'exact' ? 'exact' : 'usearch', quantization: ann.kind === 'hnsw' ? ann.quantization : undefined });
      let b: Record<string, unknown>;
      if (values['serve-only']) {
        const before = previous.rows?.find((r) => rowKey(r) === key);
        if (!before || !existsSync(indexPath(d, store))) throw new Error(`--serve-only: no kept index or earlier row for ${key}`);
        b = { buildSeconds: before.buildSeconds, buildPeakRssMB: before.buildPeakRssMB, diskMB: diskMB(indexPath(d, store)), buildCommit: before.commit };
      } else {
        console.error(`${d.name} ${store}: building…`);
        b = await child(['--child', 'build', '--dataset', d.name, '--store', store, ...passThrough()]);
      }
      console.error(`${d.name} ${store}: serving…`);
      const s = await child(['--child', 'serve', '--dataset', d.name, '--store', store, ...passThrough()]);
      rows.push({
        dataset: d.name,
        n: d.n,
        dim: d.dim,
        store: store === 'exact' ? 'exact' : 'usearch',
        ...(ann.kind === 'hnsw' ? { quantization: ann.quantization, connectivity: ann.connectivity, expansionAdd: ann.expansionAdd, expansionSearch: ann.expansionSearch } : {}),
        ...(b as Pick<StoreRow, 'buildSeconds' | 'buildPeakRssMB' | 'diskMB'>),
        ...(s as Omit<StoreRow, 'dataset' | 'n' | 'dim' | 'store' | 'buildSeconds' | 'buildPeakRssMB' | 'diskMB' | 'commit'>),
        commit,
      });
      if (!values.keep && !values['serve-only']) rmSync(indexPath(d, store), { recursive: true, force: true });
    }
  }

  const ran = new Set(rows.map(rowKey));
  const kept = (previous.rows ?? []).filter((r) => !ran.has(rowKey(r)));
  let pgvector: unknown = previous.pgvector ?? { status: 'not run: bench/stores-pg.ts does not exist yet', rows: [] };
  if (existsSync(PG_HOOK)) {
    const hook = (await import(pathToFileURL(PG_HOOK).href)) as { default: (ctx: StoreBenchContext) => Promise<StoreRow[]> };
    const ctx: StoreBenchContext = { datasets, workDir: join(WORK, 'pg'), commit, queriesOf, truthOf: (d) => truthOf(d, WORK), rowsOf: (d, start, count) => generator(d).rows(start, count) };
    // pgvector rows of datasets not run this time are kept, as ours are
    const names = new Set(datasets.map((d) => d.name));
    const earlier = ((previous.pgvector as { rows?: StoreRow[] } | undefined)?.rows ?? []).filter((r) => !names.has(r.dataset));
    pgvector = { status: 'bench/stores-pg.ts', rows: [...earlier, ...(await hook.default(ctx))] };
  }
  const all = [...kept, ...rows].sort((a, b) => DATASETS.findIndex((d) => d.name === a.dataset) - DATASETS.findIndex((d) => d.name === b.dataset));
  const result = {
    when: new Date().toISOString(),
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model, node: process.version },
    data: 'clustered synthetic embeddings (bench/stores-data.ts): 2,000 centres around 64 topics, points varying along 24 shared directions plus isotropic noise; 500 held-out queries',
    build: `upserts of ${BLOCK.toLocaleString('en')} rows, each flushed (one segment each), then close (the HNSW graph saved)`,
    rows: all,
    // the PostgreSQL + pgvector rows: filled by bench/stores-pg.ts (see bench/stores-shared.ts for its contract)
    pgvector,
  };
  mkdirSync(join(packageRoot(), 'bench', 'results'), { recursive: true });
  writeFileSync(RESULTS, `${JSON.stringify(result, null, 2)}\n`);
  const pgRows = ((pgvector as { rows?: StoreRow[] }).rows ?? []) as StoreRow[];
  printTable([...all, ...pgRows]);
}

function passThrough(): string[] {
  return ['--connectivity', values.connectivity!, '--expansion-add', values['expansion-add']!, '--expansion-search', values['expansion-search']!, '--sweep', values.sweep!];
}

function printTable(rows: (StoreRow & { sweep?: { expansionSearch: number; p50: number; p95: number; recallAt10: number }[] })[]): void {
  console.log(
    formatTable(
      ['dataset', 'store', 'settings', 'build s', 'build RSS MB', 'serve RSS MB', 'disk MB', '1 query p50/p95 ms', '32 queries p50/p95 ms', 'recall@10', 'filter 10% p95 / R@10', 'filter 1% p95 / R@10', 'commit'],
      rows.map((r) => [
        r.dataset,
        r.quantization ? `${r.store} ${r.quantization}` : r.store,
        r.connectivity ? `M=${r.connectivity} ef=${r.expansionAdd}/${r.expansionSearch}` : '',
        r.buildSeconds,
        r.buildPeakRssMB,
        r.servePeakRssMB ?? '',
        r.diskMB,
        `${r.single.p50} / ${r.single.p95}`,
        `${r.batch32.p50} / ${r.batch32.p95}`,
        r.recallAt10,
        r.filtered?.['10%'] ? `${r.filtered['10%'].p95} / ${r.filtered['10%'].recallAt10}` : '',
        r.filtered?.['1%'] ? `${r.filtered['1%'].p95} / ${r.filtered['1%'].recallAt10}` : '',
        r.commit,
      ]),
    ),
  );
  const sweeps = rows.filter((r) => r.sweep?.length);
  if (sweeps.length > 0) {
    console.log('\nexpansion (search) against recall@10 and one-query latency:');
    console.log(
      formatTable(
        ['dataset', 'store', 'expansion', 'p50 ms', 'p95 ms', 'recall@10'],
        sweeps.flatMap((r) => r.sweep!.map((s) => [r.dataset, `${r.store} ${r.quantization}`, s.expansionSearch, s.p50, s.p95, s.recallAt10])),
      ),
    );
  }
}

await main();
