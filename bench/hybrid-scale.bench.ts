/**
 * A hybrid text query end to end over a large collection: encode the text, search an HNSW
 * graph over 1M items, read the top k1's stage-2 rows from the index on disk and rescore them
 * with the cross-encoder. What a user's `duo search "…" --mode hybrid` does, through the engine.
 *
 * Flickr8k has 8,091 images, so the collection is grown from the 1,000 dev images (the index
 * bench:query builds with the starter pack): those stay as they are, and every other item is a
 * dev image's embedding plus Gaussian noise (cosine ≈ 0.9 to its source, about what separates
 * near duplicates) with that image's stage-2 row, so the graph holds 1M distinct vectors of the
 * starter model's space and stage 2 reads real rows (8,704 fp16 values each, 17 KB) from a
 * 17 GB file set. Queries: 200 dev captions, one per image, each alone, no cache.
 *
 * The index is built once (resumes at its last flush) under runs/bench/; pass --rebuild to start over.
 * Run: npm run bench:hybrid-scale [-- --items 1000000 --queries 200 --k1 100 --page-cache warm|cold]
 * Writes bench/results/hybrid-scale.json and prints a table.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { formatTable } from '../src/cli/output.js';
import { readFlickr8k } from '../src/data/readers/flickr8k.js';
import { latencyStats } from '../src/eval/hybrid-eval.js';
import { DEFAULT_HNSW } from '../src/index/ann.js';
import { buildIndex } from '../src/index/build-index.js';
import { FolderStore } from '../src/index/folder-store.js';
import type { Metadata } from '../src/index/filter.js';
import { defaultModelPath, loadEncoder } from '../src/models/load-encoder.js';
import { loadReranker } from '../src/models/load-reranker.js';
import { openEngine } from '../src/search/open-engine.js';
import { packageRoot } from '../src/util/package-root.js';
import { Rng } from './stores-data.js';

const { values } = parseArgs({
  options: {
    data: { type: 'string', default: '../shared/datasets/flickr8k' },
    items: { type: 'string', default: '1000000' },
    queries: { type: 'string', default: '200' },
    k1: { type: 'string', default: '100' },
    /** norm of the noise added to a source embedding (0.45: cosine ≈ 0.9 after normalising) */
    noise: { type: 'string', default: '0.45' },
    base: { type: 'string', default: 'runs/bench/dev.duo' },
    rebuild: { type: 'boolean', default: false },
    /** what the page cache held, recorded with the run (e.g. after `echo 1 > /proc/sys/vm/drop_caches`: cold); runs of other labels stay in the results file */
    'page-cache': { type: 'string', default: 'warm' },
  },
});
const items = Number(values.items);
const k1 = Number(values.k1);
const BLOCK = 100_000;
const UPSERT = 5_000;
const scalePath = join(packageRoot(), 'runs', 'bench', `hybrid-${items}.duo`);
const round = (x: number, digits = 2) => Number(x.toFixed(digits));

const ds = await readFlickr8k(values.data!, 'dev');
const encoder = await loadEncoder(defaultModelPath());
const reranker = await loadReranker(defaultModelPath());
console.error('indexing the dev images (resumes if already built)…');
await buildIndex({ root: join(values.data!, 'images'), indexPath: values.base!, encoder, modelSpec: defaultModelPath(), reranker, rerankerSpec: defaultModelPath(), only: new Set(ds.images.map((i) => i.id)) });

/** Grows the dev index into `items` rows (see the header); resumes from the last flushed block. */
async function build(): Promise<{ seconds: number; peakRssMB: number } | undefined> {
  if (values.rebuild) rmSync(scalePath, { recursive: true, force: true });
  const base = await FolderStore.open(values.base!);
  const sources: { id: string; vector: Float32Array; metadata: Metadata; regions: Float32Array }[] = [];
  for await (const { id } of base.list()) sources.push({ id, vector: new Float32Array(0), metadata: {}, regions: new Float32Array(0) });
  sources.sort((a, b) => a.id.localeCompare(b.id));
  const got = await base.get(sources.map((s) => s.id));
  const rows = await base.regions(sources.map((s) => s.id));
  sources.forEach((s, i) => Object.assign(s, { vector: got[i]!.vector, metadata: got[i]!.metadata, regions: rows[i]! }));
  const info = base.info;
  await base.close();

  const store = await FolderStore.open(scalePath, { write: true, create: info, ann: DEFAULT_HNSW });
  let done = await store.count();
  if (done >= items) {
    await store.close();
    return undefined;
  }
  console.error(`building ${scalePath}: ${done} of ${items} rows there`);
  const t0 = performance.now();
  if (done === 0) {
    await store.upsert(sources);
    done = sources.length;
  }
  const dim = info.dim;
  const sigma = Number(values.noise) / Math.sqrt(dim);
  while (done < items) {
    const end = Math.min(items, Math.ceil((done + 1) / BLOCK) * BLOCK);
    for (let start = done; start < end; start += UPSERT) {
      const batch = [];
      for (let i = start; i < Math.min(end, start + UPSERT); i++) {
        // seeded per row, so a resumed build writes the rows a clean one would
        const rng = new Rng(i * 2654435761);
        const source = sources[i % sources.length]!;
        const v = new Float32Array(dim);
        let norm = 0;
        for (let j = 0; j < dim; j++) norm += (v[j] = source.vector[j]! + sigma * rng.normal()) ** 2;
        for (let j = 0; j < dim; j++) v[j]! /= Math.sqrt(norm);
        // the same regions array for every copy of a source: pending rows hold references, not copies
        batch.push({ id: `synthetic/${String(i).padStart(7, '0')}.jpg`, vector: v, metadata: { source: source.id }, regions: source.regions });
      }
      await store.upsert(batch);
    }
    await store.flush();
    done = end;
    console.error(`  ${done} rows, ${round((performance.now() - t0) / 1000, 1)} s`);
  }
  await store.close();
  return { seconds: round((performance.now() - t0) / 1000, 1), peakRssMB: round(process.resourceUsage().maxRSS / 1024, 0) };
}

const built = await build();
const diskMB = round(readdirSync(scalePath).reduce((a, f) => a + statSync(join(scalePath, f)).size, 0) / 2 ** 20, 0);

const tOpen = performance.now();
const engine = await openEngine({ index: scalePath, encoder, reranker, cacheBytes: { embeddings: 0, responses: 0 } });
const openMs = round(performance.now() - tOpen, 1);
const count = await engine.store.count();
const seen = new Set<string>();
const queries = ds.captions.filter((c) => !seen.has(c.imageId) && seen.add(c.imageId)).slice(0, Number(values.queries));

/** Each query alone; the wall time around engine.search is what a caller waits for. */
async function pass(mode: 'stage1' | 'hybrid') {
  const lat = { encode: [] as number[], stage1: [] as number[], stage2: [] as number[], total: [] as number[] };
  let top10 = 0;
  for (const q of queries) {
    const t = performance.now();
    const [r] = await engine.search([{ text: q.text }], { mode, k1, k: 10 });
    lat.total.push(performance.now() - t);
    if (r!.cached || r!.fallback) throw new Error(`a benchmark query was ${r!.cached ? 'cached' : 'answered by its fallback'}`);
    lat.encode.push(r!.latencyMs.encode);
    lat.stage1.push(r!.latencyMs.stage1);
    lat.stage2.push(r!.latencyMs.stage2);
    // a copy counts for its source: the collection holds ~1,000 noisy copies of each dev image
    if (r!.results.some((x) => x.id === q.imageId || x.metadata.source === q.imageId)) top10++;
  }
  return { latencyMs: Object.fromEntries(Object.entries(lat).map(([k, v]) => [k, latencyStats(v)])), sourceInTop10: round(top10 / queries.length, 3) };
}

// the first hybrid pass reads rows the page cache may not hold yet (the build wrote 17 GB); the second is warm
const results = { hybridFirst: await pass('hybrid'), hybrid: await pass('hybrid'), stage1: await pass('stage1') };
// the current RSS, not the peak: when this process built the index, the peak is the build's
const rssAfterQueriesMB = round(process.memoryUsage().rss / 2 ** 20, 0);
await engine.close();
await reranker.dispose();
await encoder.dispose();

const commit = (() => {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: packageRoot() }).toString().trim();
  } catch {
    return 'unknown';
  }
})();
const machine = { cpus: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', memoryGiB: round(totalmem() / 2 ** 30, 0), node: process.version };
const rows: (string | number)[][] = [];
for (const [name, r] of Object.entries(results)) {
  for (const [stage, s] of Object.entries(r.latencyMs)) rows.push([name, stage, round(s.p50), round(s.p95), round(s.p99)]);
}
console.log(`hybrid text queries over ${count} items (HNSW ${DEFAULT_HNSW.quantization}, stage-2 rows on disk, ${diskMB} MB), ${queries.length} dev captions, k1 = ${k1}, k = 10 (${machine.cpus} × ${machine.cpu})`);
console.log(formatTable(['pass', 'stage', 'p50 ms', 'p95 ms', 'p99 ms'], rows));
console.log(`open ${openMs} ms; RSS after the queries ${rssAfterQueriesMB} MB; the caption's image (or a copy) in the top 10: hybrid ${results.hybrid.sourceInTop10}, stage 1 ${results.stage1.sourceInTop10}`);
const out = join(packageRoot(), 'bench', 'results');
mkdirSync(out, { recursive: true });
const file = join(out, 'hybrid-scale.json');
const run = { pageCache: values['page-cache'], when: new Date().toISOString(), commit, machine, loadAverage: loadavg()[0], items: count, queries: queries.length, k1, noise: Number(values.noise), ann: DEFAULT_HNSW, diskMB, build: built ?? 'built earlier', openMs, rssAfterQueriesMB, ...results };
const kept = existsSync(file) ? ((JSON.parse(readFileSync(file, 'utf8')) as { runs?: { pageCache?: string }[] }).runs ?? []).filter((r) => r.pageCache !== run.pageCache) : [];
writeFileSync(file, `${JSON.stringify({ runs: [...kept, run] }, null, 2)}\n`);
console.log('wrote bench/results/hybrid-scale.json');
