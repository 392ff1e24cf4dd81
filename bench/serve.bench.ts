/**
 * The server under load, on loopback: `duo serve` (the compiled command, its own process) over
 * the Flickr8k dev index (1,000 images, starter pack, its cross-encoder's image side stored),
 * and autocannon in this process sending POST /v1/search with the dev captions (one per image,
 * in turn): stage 1 and hybrid, 1, 4 and 16 connections, the engine caches on and off.
 * "Cache on" is measured warm: every query was asked once in each mode before the runs, so it
 * shows the server answering from the response cache; "cache off" computes every answer.
 * Results: bench/results/serve.json and docs/serve-load.md (with --workers N > 1:
 * serve-workersN.json and serve-load-workersN.md, so a cluster run never replaces the one-process rows).
 * With --workers N the server is `duo serve --workers N` (node:cluster, N processes on the port);
 * readiness and the fallback counts are read from every worker (fresh connections until each
 * has answered: /metrics is per worker). Rows say how many workers served them.
 * Run: npm run build && npm run bench:serve [-- --duration 10 --connections 1,4,16 --workers 1]
 */
import autocannon, { type Result } from 'autocannon';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { packageRoot } from '../src/util/package-root.js';
import { serveDevIndex } from './serve-dev-index.js';

const { values } = parseArgs({
  options: {
    data: { type: 'string', default: '../shared/datasets/flickr8k' },
    index: { type: 'string', default: 'runs/bench/serve-dev.duo' },
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '1,4,16' },
    port: { type: 'string', default: '18080' },
    workers: { type: 'string', default: '1' },
  },
});
const root = packageRoot();
const BIN = join(root, 'bin', 'duo.js');
if (!existsSync(join(root, 'dist', 'cli', 'main.js'))) throw new Error('dist/ is not built: run npm run build first (the bench serves with the compiled command)');
const duration = Number(values.duration);
const connections = values.connections!.split(',').map(Number);
const port = Number(values.port);
const url = `http://127.0.0.1:${port}`;
const workers = Number(values.workers);
if (!Number.isInteger(workers) || workers < 1) throw new Error(`--workers: a positive number (got ${values.workers})`);

/** GET on a fresh connection (the cluster hands each to the next worker): the body and the worker that answered */
function getFresh(path: string): Promise<{ ok: boolean; body: string; worker: string }> {
  return new Promise((resolve, reject) => {
    const r = request(`${url}${path}`, { agent: false, headers: { connection: 'close' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ ok: res.statusCode === 200, body, worker: String(res.headers['duo-worker'] ?? 'single') }));
    });
    r.on('error', reject);
    r.end();
  });
}

/** one answer from each worker (a few hundred tries at most) */
async function fromEveryWorker(path: string): Promise<Map<string, { ok: boolean; body: string }>> {
  const seen = new Map<string, { ok: boolean; body: string }>();
  for (let i = 0; i < 400 && seen.size < workers; i++) {
    const r = await getFresh(path);
    if (!seen.has(r.worker)) seen.set(r.worker, r);
  }
  if (seen.size < workers) throw new Error(`${path}: ${seen.size} of ${workers} workers answered`);
  return seen;
}

/** the commit measured: HEAD when the run starts (the served code is dist/, built from it) */
const commit = (() => {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root }).toString().trim();
  } catch {
    return 'unknown';
  }
})();
/** the machine is shared: its load average at the start and the end tells how much else ran */
const loadStart = loadavg()[0]!;

// `duo index <dev images> --reranker models/starter`, resumable: a built index is reused
const ds = await serveDevIndex(values.data!, values.index!);
const seen = new Set<string>();
const queries = ds.captions.filter((c) => !seen.has(c.imageId) && seen.add(c.imageId)).map((c) => c.text.trim());

async function startServer(cache: boolean): Promise<ChildProcess> {
  const args = [BIN, 'serve', '--index', values.index!, '--port', String(port), '--log-level', 'warn', '--cache-dir', join(root, 'runs', 'bench', 'thumbs')];
  if (!cache) args.push('--no-cache');
  if (workers > 1) args.push('--workers', String(workers));
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'] });
  for (let i = 0; i < 600; i++) {
    if (child.exitCode !== null) throw new Error(`duo serve exited with ${child.exitCode}`);
    try {
      if ((await getFresh('/v1/ready')).ok && [...(await fromEveryWorker('/v1/ready')).values()].every((r) => r.ok)) return child;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('duo serve did not become ready');
}

async function stopServer(child: ChildProcess): Promise<void> {
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

const search = (text: string, mode: string) =>
  fetch(`${url}/v1/search`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text, mode, k: 10 }) });

/** the fallbacks the server counted so far (hybrid answered by stage 1: budget, failure), summed over the workers */
async function fallbacks(): Promise<number> {
  let n = 0;
  for (const { body } of (await fromEveryWorker('/metrics')).values()) {
    n += [...body.matchAll(/^duo_search_fallbacks_total\{[^}]*\} (\d+)/gm)].reduce((k, m) => k + Number(m[1]), 0);
  }
  return n;
}

function load(mode: string, conns: number, seconds: number): Promise<Result> {
  let next = 0;
  return autocannon({
    url,
    connections: conns,
    duration: seconds,
    timeout: 10,
    requests: [
      {
        method: 'POST',
        path: '/v1/search',
        headers: { 'content-type': 'application/json' },
        setupRequest: (request) => ({ ...request, body: JSON.stringify({ text: queries[next++ % queries.length], mode, k: 10 }) }),
      },
    ],
  });
}

interface Row {
  workers: number;
  cache: 'on' | 'off';
  mode: string;
  connections: number;
  requestsPerSecond: number;
  p50: number;
  p95: number;
  p97_5: number;
  p99: number;
  errors: number;
  non2xx: number;
  timeouts: number;
  fallbacks: number;
  requests: number;
}

const rows: Row[] = [];
for (const cache of ['off', 'on'] as const) {
  const server = await startServer(cache === 'on');
  try {
    // every query answerable? (the starter vocabulary must know a word of each)
    const answerable: string[] = [];
    for (const q of queries) if ((await search(q, 'stage1')).ok) answerable.push(q);
    if (answerable.length < queries.length) console.error(`${queries.length - answerable.length} queries dropped: no word the model knows`);
    queries.splice(0, queries.length, ...answerable);
    // cache on: every query asked once in each mode, so the runs measure the warm cache
    if (cache === 'on') for (const q of queries) await search(q, 'hybrid');
    for (const mode of ['stage1', 'hybrid']) {
      await load(mode, 4, 2); // JIT and connection warm-up, not recorded
      for (const conns of connections) {
        const before = await fallbacks();
        const r = await load(mode, conns, duration);
        const row: Row = {
          workers,
          cache,
          mode,
          connections: conns,
          requestsPerSecond: Math.round(r.requests.average),
          p50: r.latency.p50,
          // autocannon reports p90, p97.5 and p99; p95 is read from the request latencies as p90–p97.5 interpolated
          p95: Math.round((r.latency.p90 + (r.latency.p97_5 - r.latency.p90) * (5 / 7.5)) * 100) / 100,
          p97_5: r.latency.p97_5,
          p99: r.latency.p99,
          errors: r.errors,
          non2xx: r.non2xx,
          timeouts: r.timeouts,
          fallbacks: (await fallbacks()) - before,
          requests: r.requests.total,
        };
        rows.push(row);
        console.error(JSON.stringify(row));
      }
    }
  } finally {
    await stopServer(server);
  }
}

const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}`;
mkdirSync(join(root, 'bench', 'results'), { recursive: true });
const machineLoad = { start: Math.round(loadStart * 100) / 100, end: Math.round(loadavg()[0]! * 100) / 100 };
const suffix = workers > 1 ? `-workers${workers}` : '';
writeFileSync(join(root, 'bench', 'results', `serve${suffix}.json`), `${JSON.stringify({ commit, machine, load: machineLoad, date: new Date().toISOString(), index: values.index, items: 1000, queries: queries.length, durationS: duration, workers, rows }, null, 2)}\n`);

/** The issue's targets for this machine, read off the rows (cache off, 16 connections). */
function targets(all: typeof rows): string {
  const at = (mode: string) => all.find((r) => r.cache === 'off' && r.mode === mode && r.connections === 16);
  const s1 = at('stage1');
  const hy = at('hybrid');
  const failed = all.reduce((n, r) => n + r.errors + r.timeouts + r.non2xx, 0);
  const verdict = (ok: boolean) => (ok ? 'met' : '**not met**');
  return [
    'Targets (cache off, 16 connections):',
    s1 ? `- stage-1 text search ≥ 1,000 requests/s: ${s1.requestsPerSecond}/s, ${verdict(s1.requestsPerSecond >= 1000)}` : '- stage-1 text search: not run',
    hy ? `- hybrid ≥ 150 requests/s with p99 ≤ 100 ms: ${hy.requestsPerSecond}/s, p99 ${hy.p99} ms, ${verdict(hy.requestsPerSecond >= 150 && hy.p99 <= 100)}` : '- hybrid: not run',
    `- errors and non-2xx answers 0 in every row: ${failed}, ${verdict(failed === 0)}`,
  ].join('\n');
}

const table = [
  '| workers | cache | mode | connections | requests/s | p50 ms | p95 ms | p99 ms | errors | non-2xx | stage-1 fallbacks |',
  '| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...rows.map((r) => `| ${r.workers} | ${r.cache} | ${r.mode} | ${r.connections} | ${r.requestsPerSecond} | ${r.p50} | ${r.p95} | ${r.p99} | ${r.errors + r.timeouts} | ${r.non2xx} | ${r.fallbacks} |`),
].join('\n');
const doc = `# duo serve under load

\`npm run bench:serve\` at commit \`${commit}\` (${new Date().toISOString().slice(0, 10)}; ${machine}; 1-minute load
average ${machineLoad.start} at the start and ${machineLoad.end} at the end: the machine is shared).
\`duo serve\`${workers > 1 ? ` --workers ${workers}` : ''} (compiled, its own process${workers > 1 ? `es: ${workers} workers sharing the port` : ''}, default limits, \`--log-level warn\`) over the Flickr8k dev
index: ${ds.images.length} images, starter pack, its cross-encoder's image side stored
(\`duo index … --reranker models/starter\`). autocannon on loopback, in another process, sends
\`POST /v1/search\` with \`{"text", "mode", "k": 10}\` (hybrid: k1 = 100, weighted fusion), the
text cycling through ${queries.length} dev captions (one per image); ${duration} s per row after a
2 s warm-up. **Cache off**: \`--no-cache\`, every answer computed. **Cache on**: every caption was
asked once in each mode before the runs, so the rows show answers from the response cache.
Latency in ms as autocannon measures it (whole milliseconds); p95 interpolated between its p90
and p97.5. Errors are connection errors and time-outs; non-2xx would count 4xx/5xx answers
(503 overload included); fallbacks are hybrid answers that came back as stage 1 (stage 2 past its budget).
"Cache off" turns off the engine's embedding and response caches only: stage 2 still reads the
candidates' stored rows through the server's row cache (\`--stage2-cache-bytes\`, 64 MiB; the
1,000 images' rows are 17 MB, so after the warm-up they all come from memory).

${table}

${targets(rows)}
`;
writeFileSync(join(root, 'docs', `serve-load${suffix}.md`), doc);
console.log(table);
