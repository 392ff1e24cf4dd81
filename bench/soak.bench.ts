/**
 * Memory over a long run: `duo serve` in its own process over the Flickr8k dev index (1,000
 * images, starter pack, its cross-encoder's image side stored; bench/serve-dev-index.ts) answers
 * 10,000 mixed requests on loopback (test/reliability/soak.ts: text searches in both modes over
 * the 5,000 dev captions varied, so the caches churn; k1 anywhere in 10–200; image uploads of
 * dev photos; more like this; items, images and thumbnails at every size; bad requests), and
 * its memory is read from its /metrics every 500 requests, as it is and right after a full
 * garbage collection (what the server holds, without the garbage V8 has not collected yet). Results:
 * bench/results/soak.json (samples, before/after, counts by status) and a table on stdout.
 * The server runs the source through tsx (the working tree as it is; --compiled: bin/duo.js,
 * which needs npm run build), with fresh thumbnail and log state.
 * Run: npm run bench:soak [-- --requests 10000 --sample-every 500 --concurrency 8 --seed 1]
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { packageRoot } from '../src/util/package-root.js';
import { mib, settledMemory, startServeChild } from '../test/reliability/serve-child.js';
import { runSoak, type SoakSample } from '../test/reliability/soak.js';
import { serveDevIndex } from './serve-dev-index.js';

const { values } = parseArgs({
  options: {
    data: { type: 'string', default: '../shared/datasets/flickr8k' },
    index: { type: 'string', default: 'runs/bench/serve-dev.duo' },
    requests: { type: 'string', default: '10000' },
    'sample-every': { type: 'string', default: '500' },
    concurrency: { type: 'string', default: '8' },
    seed: { type: 'string', default: '1' },
    compiled: { type: 'boolean', default: false },
  },
});
const root = packageRoot();
const requests = Number(values.requests);
const sampleEvery = Number(values['sample-every']);
const concurrency = Number(values.concurrency);
const seed = Number(values.seed);
for (const [flag, v] of Object.entries({ requests, 'sample-every': sampleEvery, concurrency })) {
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${flag}: a positive whole number`);
}

const git = (...args: string[]) => {
  try {
    return execFileSync('git', args, { cwd: root }).toString().trim();
  } catch {
    return 'unknown';
  }
};
const commit = git('rev-parse', '--short', 'HEAD');
/** files of the served code changed since that commit (the server runs the working tree) */
const changed = git('status', '--porcelain', '--', 'src').split('\n').filter(Boolean).length;
const loadStart = loadavg()[0]!;

const ds = await serveDevIndex(values.data!, values.index!);
const queries = [...new Set(ds.captions.map((c) => c.text.trim()))];
const ids = ds.images.map((i) => i.id);
const images = ds.images.slice(0, 40).map((i) => ({ data: readFileSync(i.source as string), type: 'image/jpeg' }));

const work = mkdtempSync(join(tmpdir(), 'duo-soak-'));
// --expose-gc and a SIGUSR2 handler (test instrumentation, ./test/reliability/serve-child.ts): each sample is read as
// the process is, then again right after a full collection, which is what the server holds
const server = await startServeChild(['--index', resolve(values.index!), '--cache-dir', join(work, 'thumbs')], { compiled: values.compiled, gcOnSignal: true });
let result: Awaited<ReturnType<typeof runSoak>>;
let before: Awaited<ReturnType<typeof settledMemory>>;
let after: Awaited<ReturnType<typeof settledMemory>>;
try {
  await server.collectGarbage();
  before = await settledMemory(server.url);
  console.error(`duo serve ready at ${server.url}: RSS ${mib(before.rss)} MiB, heap ${mib(before.heapUsed)} MiB; ${requests} requests, ${concurrency} at a time, seed ${seed}`);
  result = await runSoak({
    url: server.url,
    requests,
    sampleEvery,
    concurrency,
    seed,
    queries,
    ids,
    images,
    hybrid: true,
    collectGarbage: () => server.collectGarbage(),
    onSample: (s) =>
      console.error(
        `${String(s.requests).padStart(6)} requests  ${s.seconds.toFixed(1).padStart(6)} s  RSS ${mib(s.rss).toFixed(1).padStart(7)} MiB, ` +
          `after a collection ${mib(s.live!.rss).toFixed(1).padStart(7)} MiB (heap ${mib(s.live!.heapUsed).toFixed(1)}, ArrayBuffers ${mib(s.live!.external).toFixed(1)})`,
      ),
  });
  await new Promise((r) => setTimeout(r, 2_000));
  await server.collectGarbage();
  after = await settledMemory(server.url, 5, 400);
  if (!server.alive()) throw new Error('duo serve died during the soak');
} finally {
  await server.stop();
  rmSync(work, { recursive: true, force: true });
}

const { samples } = result;
const live = (x: SoakSample) => x.live!;
// the level after the first 2,000 requests (models warm, caches filling) against the mean of the last three samples
const warmAt = Math.min(samples.length - 1, Math.max(0, Math.round(2_000 / sampleEvery) - 1));
const lastThree = samples.slice(-3);
const meanOf = (of: (x: SoakSample) => number) => lastThree.reduce((n, x) => n + of(x), 0) / lastThree.length;
const summary = {
  commit,
  servedCode: changed > 0 ? `${commit} with ${changed} changed files under src/ (the working tree)` : commit,
  command: values.compiled ? 'bin/duo.js serve (dist/)' : 'tsx src/cli/main.ts serve',
  machine: `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}`,
  load: { start: Math.round(loadStart * 100) / 100, end: Math.round(loadavg()[0]! * 100) / 100 },
  date: new Date().toISOString(),
  index: values.index,
  items: ids.length,
  queries: queries.length,
  requests,
  concurrency,
  seed,
  seconds: Math.round(result.seconds * 10) / 10,
  note: 'rssMiB: as the process is when sampled; afterCollection: right after a full garbage collection (what the server holds); heldMiB: V8 heap in use + ArrayBuffers, after a collection',
  rssMiB: {
    before: mib(before.rss),
    [`after${samples[warmAt]!.requests}`]: mib(samples[warmAt]!.rss),
    meanOfLastThreeSamples: mib(meanOf((x) => x.rss)),
    max: mib(Math.max(...samples.map((x) => x.rss))),
    after: mib(after.rss),
  },
  rssAfterCollectionMiB: {
    before: mib(before.rss),
    [`after${samples[warmAt]!.requests}`]: mib(live(samples[warmAt]!).rss),
    meanOfLastThreeSamples: mib(meanOf((x) => live(x).rss)),
    max: mib(Math.max(...samples.map((x) => live(x).rss))),
  },
  heldMiB: {
    before: mib(before.heapUsed + before.external),
    [`after${samples[warmAt]!.requests}`]: mib(live(samples[warmAt]!).heapUsed + live(samples[warmAt]!).external),
    meanOfLastThreeSamples: mib(meanOf((x) => live(x).heapUsed + live(x).external)),
    after: mib(after.heapUsed + after.external),
  },
  byStatus: result.byStatus,
  byKind: result.byKind,
  failures: result.failures.slice(0, 20),
  serverErrorsLogged: server.errors.length,
  samples: samples.map((x) => ({
    requests: x.requests,
    seconds: Math.round(x.seconds * 10) / 10,
    rssMiB: mib(x.rss),
    rssAfterCollectionMiB: mib(live(x).rss),
    heapUsedMiB: mib(live(x).heapUsed),
    arrayBuffersMiB: mib(live(x).external),
  })),
};
mkdirSync(join(root, 'bench', 'results'), { recursive: true });
writeFileSync(join(root, 'bench', 'results', 'soak.json'), `${JSON.stringify(summary, null, 2)}\n`);

const table = [
  '| requests | s | RSS MiB | RSS after a collection | V8 heap in use | ArrayBuffers |',
  '| ---: | ---: | ---: | ---: | ---: | ---: |',
  `| 0 (before) | 0 | ${mib(before.rss)} | ${mib(before.rss)} | ${mib(before.heapUsed)} | ${mib(before.external)} |`,
  ...samples.map((x) => `| ${x.requests} | ${x.seconds.toFixed(1)} | ${mib(x.rss)} | ${mib(live(x).rss)} | ${mib(live(x).heapUsed)} | ${mib(live(x).external)} |`),
  `| ${requests} (2 s later) | | ${mib(after.rss)} | ${mib(after.rss)} | ${mib(after.heapUsed)} | ${mib(after.external)} |`,
].join('\n');
console.log(table);
console.log(`\nby status: ${JSON.stringify(result.byStatus)}; 5xx or no answer: ${result.failures.length}; errors logged by the server: ${server.errors.length}`);
console.log(`RSS ${mib(before.rss)} MiB before, ${mib(samples[warmAt]!.rss)} MiB after ${samples[warmAt]!.requests} requests, ${mib(meanOf((x) => x.rss))} MiB over the last three samples, ${mib(after.rss)} MiB at the end (after a collection)`);
