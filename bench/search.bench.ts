/**
 * Exact top-10 search over 100k random 512-d unit vectors: the index's blocked JS scan
 * against a plain-loop baseline and against onnxruntime-node MatMul+TopK, single and
 * batched queries; plus index build, save and load. Prints a table and writes
 * bench/results/search.json. Run: npm run bench [-- --n 100000 --dim 512]
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { formatTable } from '../src/cli/output.js';
import { ExactIndex } from '../src/index/exact-index.js';
import { ExactStore } from '../src/index/exact-store.js';
import { OrtTopK } from '../src/index/ort-top-k.js';
import { packageRoot } from '../src/util/package-root.js';

const { values } = parseArgs({
  options: { n: { type: 'string', default: '100000' }, dim: { type: 'string', default: '512' }, k: { type: 'string', default: '10' } },
});
const N = Number(values.n);
const DIM = Number(values.dim);
const K = Number(values.k);

function randomUnits(count: number, dim: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const m = new Float32Array(count * dim);
  for (let i = 0; i < m.length; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    m[i] = s / 4294967296 - 0.5;
  }
  for (let r = 0; r < count; r++) {
    let norm = 0;
    for (let j = 0; j < dim; j++) norm += m[r * dim + j]! ** 2;
    norm = Math.sqrt(norm);
    for (let j = 0; j < dim; j++) m[r * dim + j]! /= norm;
  }
  return m;
}

/** The obvious implementation: score every row with a simple loop, sort all the scores. */
function plainLoop(q: Float32Array, corpus: Float32Array, n: number, dim: number, k: number): number[] {
  const scores = new Float32Array(n);
  for (let r = 0; r < n; r++) {
    let s = 0;
    for (let j = 0; j < dim; j++) s += q[j]! * corpus[r * dim + j]!;
    scores[r] = s;
  }
  return Array.from(scores.keys()).sort((a, b) => scores[b]! - scores[a]!).slice(0, k);
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

async function time(repeats: number, fn: () => unknown | Promise<unknown>): Promise<number[]> {
  await fn(); // warm-up
  const out: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t = performance.now();
    await fn();
    out.push(performance.now() - t);
  }
  return out;
}

const rows: { method: string; batch: number; msPerBatch: number; p95: number; msPerQuery: number; qps: number }[] = [];
const record = (method: string, batch: number, ms: number[]) => {
  const med = percentile(ms, 50);
  rows.push({ method, batch, msPerBatch: med, p95: percentile(ms, 95), msPerQuery: med / batch, qps: (1000 * batch) / med });
};

console.error(`generating ${N} × ${DIM} vectors…`);
const corpus = randomUnits(N, DIM, 1);
const queries = randomUnits(256, DIM, 2);
const ids = Array.from({ length: N }, (_, i) => `img/${String(i).padStart(6, '0')}.jpg`);
const vectors = Array.from({ length: N }, (_, i) => corpus.subarray(i * DIM, (i + 1) * DIM));

let t = performance.now();
const index = new ExactIndex(DIM);
index.upsert(ids, vectors);
const buildMs = performance.now() - t;

const dir = join(tmpdir(), `duo-bench-${process.pid}`);
mkdirSync(dir, { recursive: true });
const path = join(dir, 'bench.duo');
// the index folder as `duo index` writes it: one segment appended by a flush, then reopened
const store = await ExactStore.open(path, { write: true, create: { items: 'images', modelId: 'bench', modelSpec: 'bench', dim: DIM, root: '/bench' } });
await store.upsert(ids.map((id, i) => ({ id, vector: vectors[i]! })));
t = performance.now();
await store.flush();
const saveMs = performance.now() - t;
await store.close();
t = performance.now();
const loaded = await ExactStore.open(path);
const loadMs = performance.now() - t;
if ((await loaded.count()) !== N) throw new Error('reload lost rows');
await loaded.close();
rmSync(dir, { recursive: true, force: true });

const q = (i: number) => queries.subarray(i * DIM, (i + 1) * DIM);
const qList = (b: number) => Array.from({ length: b }, (_, i) => q(i));

// correctness first: every method agrees on the top 10 of query 0
const expected = plainLoop(q(0), corpus, N, DIM, K);
const ort = await OrtTopK.create();
const fromOrt = (await ort.search(queries.subarray(0, DIM), 1, index.matrix(), N, DIM, K))[0]!.rows;
index.backend = 'js';
const fromIndex = (await index.search([q(0)], K))[0]!.map((h) => ids.indexOf(h.id));
if (String(fromOrt) !== String(expected) || String(fromIndex) !== String(expected)) throw new Error('methods disagree on the top 10');

console.error('timing…');
record('plain loop + full sort', 1, await time(10, () => plainLoop(q(0), corpus, N, DIM, K)));
for (const b of [1, 32, 256]) record('ExactIndex JS scan (blocked, heap)', b, await time(b === 1 ? 20 : 3, () => index.search(qList(b), K)));
index.backend = 'auto';
for (const b of [1, 32, 256]) record('ExactIndex auto (what search uses)', b, await time(b === 1 ? 20 : 5, () => index.search(qList(b), K)));
for (const b of [1, 32, 256]) {
  const flat = queries.subarray(0, b * DIM);
  record('onnxruntime Gemm+TopK, direct', b, await time(b === 1 ? 20 : 5, () => ort.search(flat, b, index.matrix(), N, DIM, K)));
}
await ort.dispose();

const machine = { cpus: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', node: process.version };
console.log(`exact top-${K} over ${N} × ${DIM} (median of repeats; ${machine.cpus} × ${machine.cpu})`);
console.log(formatTable(['method', 'batch', 'ms/batch', 'p95 ms', 'ms/query', 'queries/s'], rows.map((r) => [r.method, r.batch, r.msPerBatch, r.p95, r.msPerQuery, r.qps])));
console.log(`\nindex of ${N}: build ${buildMs.toFixed(0)} ms, save ${saveMs.toFixed(0)} ms, load ${loadMs.toFixed(0)} ms (${((N * DIM * 4) / 2 ** 20).toFixed(0)} MiB of vectors)`);

const outDir = join(packageRoot(), 'bench', 'results');
mkdirSync(outDir, { recursive: true });
writeFileSync(
  join(outDir, 'search.json'),
  `${JSON.stringify({ when: new Date().toISOString(), machine, n: N, dim: DIM, k: K, search: rows, index: { buildMs, saveMs, loadMs } }, null, 2)}\n`,
);
console.log(`wrote bench/results/search.json`);
