/**
 * Query latency of the whole engine on this machine: text encode, stage 1, stage 2 and total,
 * p50/p95 over Flickr8k dev captions, for stage 1 alone and hybrid with k1 = 100, on an index
 * of the 1,000 dev images built with the starter pack (regions stored for stage 2); then
 * image→text: dev images as queries over an index of the 5,000 dev captions.
 * Run: npm run bench:query [-- --queries 200 --k1 100]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { formatTable } from '../src/cli/output.js';
import { datasetCaptions } from '../src/data/caption-file.js';
import { readFlickr8k } from '../src/data/readers/flickr8k.js';
import { latencyStats } from '../src/eval/hybrid-eval.js';
import { buildCaptionIndex } from '../src/index/build-caption-index.js';
import { buildIndex } from '../src/index/build-index.js';
import { defaultModelPath, loadEncoder } from '../src/models/load-encoder.js';
import { loadReranker } from '../src/models/load-reranker.js';
import type { Query, SearchEngine } from '../src/search/engine.js';
import { openEngine } from '../src/search/open-engine.js';
import { packageRoot } from '../src/util/package-root.js';

const { values } = parseArgs({
  options: {
    data: { type: 'string', default: '../shared/datasets/flickr8k' },
    queries: { type: 'string', default: '200' },
    k1: { type: 'string', default: '100' },
    index: { type: 'string', default: 'runs/bench/dev.duo' },
  },
});
const ds = await readFlickr8k(values.data!, 'dev');
const encoder = await loadEncoder(defaultModelPath());
const reranker = await loadReranker(defaultModelPath());
console.error('indexing the dev images (resumes if already built)…');
await buildIndex({ root: join(values.data!, 'images'), indexPath: values.index!, encoder, modelSpec: defaultModelPath(), reranker, rerankerSpec: defaultModelPath(), only: new Set(ds.images.map((i) => i.id)) });
// no response or embedding cache: every query is measured cold (the cache is measured apart below)
const uncached = { embeddings: 0, responses: 0 };
const engine = await openEngine({ index: values.index!, encoder, reranker, cacheBytes: uncached });
// distinct captions, one per image, so no query is answered from the cache
const seen = new Set<string>();
const queries = ds.captions.filter((c) => !seen.has(c.imageId) && seen.add(c.imageId)).slice(0, Number(values.queries)).map((c) => c.text);
await engine.search([{ text: 'warm up' }], { mode: 'hybrid', k1: Number(values.k1) });

/** Per-stage latency of each query run alone (caches cleared afterwards), p50/p95/mean. */
async function measure(on: SearchEngine, qs: Query[], mode: 'stage1' | 'hybrid') {
  const lat = { encode: [] as number[], stage1: [] as number[], stage2: [] as number[], total: [] as number[] };
  for (const q of qs) {
    const t = performance.now();
    const [r] = await on.search([q], { mode, k1: Number(values.k1), k: 10 });
    const wall = performance.now() - t;
    if (r!.cached) throw new Error('a benchmark query was served from the cache');
    lat.encode.push(r!.latencyMs.encode);
    lat.stage1.push(r!.latencyMs.stage1);
    lat.stage2.push(r!.latencyMs.stage2);
    lat.total.push(wall);
  }
  return Object.fromEntries(Object.entries(lat).map(([k, v]) => [k, latencyStats(v)]));
}

const rows: (string | number)[][] = [];
const results: Record<string, unknown> = {};
const record = (name: string, stats: Record<string, ReturnType<typeof latencyStats>>) => {
  results[name] = stats;
  for (const [stage, s] of Object.entries(stats)) rows.push([name, stage, s.p50, s.p95, s.mean]);
};
for (const mode of ['stage1', 'hybrid'] as const) record(mode, await measure(engine, queries.map((text) => ({ text })), mode));

// image→text: dev images as queries over the dev captions, stage 2 rescoring the top k1 captions
const captionIndex = values.index!.replace(/(\.duo)?$/, '-captions.duo');
await buildCaptionIndex({ captions: datasetCaptions(ds), indexPath: captionIndex, encoder, modelSpec: defaultModelPath(), source: values.data! });
const captionEngine = await openEngine({ index: captionIndex, encoder, reranker, cacheBytes: uncached });
const imageQueries = ds.images.slice(0, Number(values.queries)).map((i) => ({ image: join(values.data!, 'images', i.id) }));
for (const mode of ['stage1', 'hybrid'] as const) record(`image→text ${mode}`, await measure(captionEngine, imageQueries, mode));

// the cache: the same query again, on an engine with the default caches
const cached = await openEngine({ index: values.index!, encoder, reranker });
const t = performance.now();
await cached.search([{ text: queries[0]! }], { mode: 'hybrid', k1: Number(values.k1) });
const first = performance.now() - t;
const t2 = performance.now();
await cached.search([{ text: queries[0]! }], { mode: 'hybrid', k1: Number(values.k1) });
const repeat = performance.now() - t2;
const images = await engine.store.count();
const captionCount = await captionEngine.store.count();
for (const e of [engine, captionEngine, cached]) await e.close();
await reranker.dispose();
await encoder.dispose();

const machine = { cpus: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', node: process.version };
console.log(`query latency over ${queries.length} Flickr8k dev captions (${images} images) and ${imageQueries.length} dev images (${captionCount} captions), k1 = ${values.k1}, k2 = 10 (${machine.cpus} × ${machine.cpu})`);
console.log(formatTable(['mode', 'stage', 'p50 ms', 'p95 ms', 'mean ms'], rows));
console.log(`repeated query: ${first.toFixed(1)} ms first, ${repeat.toFixed(3)} ms from the cache (${(first / repeat).toFixed(0)}x)`);
const out = join(packageRoot(), 'bench', 'results');
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'query.json'), `${JSON.stringify({ when: new Date().toISOString(), machine, queries: queries.length, images, k1: Number(values.k1), latencyMs: results, cache: { firstMs: first, repeatMs: repeat } }, null, 2)}\n`);
console.log('wrote bench/results/query.json');
