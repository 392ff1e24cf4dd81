/**
 * A bounded fuzz run of the HTTP API over real connections: `duo serve` in its own process over
 * the colour collection (and its caption index), then a seeded stream of random and mutated
 * requests to every route (./fuzz-cases.ts: bodies and query strings derived from the server's
 * OpenAPI document, then broken; odd multipart bodies; path tricks in ids; a few requests that
 * are not valid HTTP). Every answer must be below 500, every 4xx in the one error shape, no
 * answer may carry a byte of a file outside the collection (a sentinel planted beside it and
 * inside its folder unindexed, /etc/passwd, the package's own package.json), the server must
 * still answer afterwards, and its resident memory must come back to its level before the run.
 *
 * A request that gets no answer at all fails too, unless its body was over the body limit.
 *
 * Reproducible: the seed is printed; DUO_FUZZ_SEED and DUO_FUZZ_COUNT set it and the number of
 * requests (default 2,000: a few seconds of requests, some 15 s with the collection and the
 * server's start); DUO_FUZZ_VERBOSE=1 prints requests that got no answer and the server's
 * error lines.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { crc32 } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { packageRoot } from '../../src/util/package-root.js';
import { tempDir } from '../helpers.js';
import { colourCollection, type Collection } from '../serve/fixture.js';
import { fuzzCase, Rng, type FuzzCase, type Images, type OpenApi, type Target } from './fuzz-cases.js';
import { HttpClient, type Answer } from './http-client.js';
import { mib, MiB, settledMemory, startServeChild, type ServeChild } from './serve-child.js';

const SEED = process.env.DUO_FUZZ_SEED ? Number(process.env.DUO_FUZZ_SEED) : Math.floor(Math.random() * 2 ** 31);
const COUNT = process.env.DUO_FUZZ_COUNT ? Number(process.env.DUO_FUZZ_COUNT) : 2_000;
/** requests in flight at once: enough to overlap model work, well under the queue (4 running, 64 waiting), so no 503 is an honest overload */
const CONCURRENCY = 4;
/** a warm-up round before the memory baseline: every route and case kind once at least */
const WARM_UP = Math.min(400, COUNT);
/**
 * How far RSS may stay above its level after the warm-up round. What legitimately grows:
 * the engines' caches (embeddings 16 MiB, responses 32 MiB, both counted in bytes; with ~2,000
 * mostly distinct queries of at most 7 results they fill a few MiB), V8's heap settling at a
 * higher old-space size, and glibc keeping freed arenas. 48 MiB is about 12% of this server's
 * ~400 MiB RSS; a leak of what a request carries (bodies up to 64 KiB, uploads, 20 KB field
 * names) over 2,000 requests would pass it several times over.
 */
const RSS_BOUND = 48 * MiB;
/** the server's JSON body limit (its default): a request over it may see its connection closed */
const BODY_LIMIT = 64 << 10;

/** A PNG header claiming 60,000 × 60,000 pixels, with no image data: the pixel limit must refuse it from the header. */
function pngBomb(): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(60_000, 0);
  ihdr.writeUInt32BE(60_000, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc32(body), 8 + data.length);
    return out;
  };
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IEND', Buffer.alloc(0))]);
}

interface Outcome {
  kind: string;
  what: string;
  status: number | 'no answer';
}

/** What is wrong with an answer, or undefined. */
function judge(c: FuzzCase, a: Answer, forbidden: Buffer[]): string | undefined {
  for (const f of forbidden) if (a.body.includes(f)) return `the body holds ${JSON.stringify(f.toString().slice(0, 40))}: a file outside the collection`;
  if (a.status >= 500) return `status ${a.status}`;
  const head = 'request' in c && c.request.method === 'HEAD';
  if (a.status >= 400 && !head) {
    let body: unknown;
    try {
      body = JSON.parse(a.body.toString('utf8'));
    } catch {
      return `a ${a.status} whose body is not JSON`;
    }
    const error = (body as { error?: Record<string, unknown> } | null)?.error;
    const keys = body && typeof body === 'object' ? Object.keys(body) : [];
    if (keys.length !== 1 || !error || typeof error.code !== 'string' || error.code === '' || typeof error.message !== 'string') return `a ${a.status} not in the error shape`;
    if (Object.keys(error).some((k) => !['code', 'message', 'field'].includes(k)) || (error.field !== undefined && typeof error.field !== 'string')) return `a ${a.status} with more than code, message and field`;
  }
  return undefined;
}

const describeCase = (c: FuzzCase) => ('request' in c ? `${c.request.method} ${c.request.path.slice(0, 160)}${c.request.path.length > 160 ? '…' : ''}` : JSON.stringify(c.raw.toString('latin1').slice(0, 160)));

interface Failure {
  reason: string;
  example: string;
}

/** Wrong answers by reason, each with its first example. */
function failureReport(failures: Failure[]): string[] {
  const byReason = new Map<string, { n: number; example: string }>();
  for (const f of failures) {
    const seen = byReason.get(f.reason);
    if (seen) seen.n++;
    else byReason.set(f.reason, { n: 1, example: f.example });
  }
  return [...byReason].map(([reason, { n, example }]) => `${n} × ${reason}, e.g. ${example}`);
}

async function run(client: HttpClient, cases: FuzzCase[], forbidden: Buffer[]): Promise<{ outcomes: Outcome[]; failures: Failure[] }> {
  const outcomes: Outcome[] = [];
  const failures: Failure[] = [];
  let next = 0;
  const worker = async () => {
    while (next < cases.length) {
      const c = cases[next++]!;
      let answer: Answer | undefined;
      let why = 'the server closed the connection without an answer';
      try {
        answer = 'request' in c ? await client.send(c.request) : await client.raw(c.raw);
      } catch (error) {
        why = (error as Error).message;
        if (process.env.DUO_FUZZ_VERBOSE) console.error(`no answer: ${describeCase(c)}: ${why}`);
      }
      const status = answer && answer.status > 0 ? answer.status : 'no answer';
      outcomes.push({ kind: c.kind, what: describeCase(c), status });
      // a server may close the connection on a body over its limit while it is still being sent (its 413 unread)
      const oversize = 'request' in c && (c.request.body?.length ?? 0) > BODY_LIMIT;
      const wrong = status === 'no answer' ? (oversize ? undefined : `no answer (${why})`) : judge(c, answer!, forbidden);
      if (wrong) failures.push({ reason: `${wrong} (${c.kind})`, example: `${describeCase(c)} → ${answer?.body.toString('utf8').slice(0, 300) ?? ''}` });
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return { outcomes, failures };
}

function table(outcomes: Outcome[]): string {
  const kinds = [...new Set(outcomes.map((o) => o.kind))];
  const statuses = [...new Set(outcomes.map((o) => String(o.status)))].sort();
  const count = (kind: string | undefined, status: string) => outcomes.filter((o) => (kind === undefined || o.kind === kind) && String(o.status) === status).length;
  const rows = [['', ...statuses, 'total'], ...kinds.map((k) => [k, ...statuses.map((s) => String(count(k, s))), String(outcomes.filter((o) => o.kind === k).length)])];
  rows.push(['all', ...statuses.map((s) => String(count(undefined, s))), String(outcomes.length)]);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ')).join('\n');
}

describe('HTTP fuzz: duo serve on loopback', { timeout: 300_000 }, () => {
  const dir = tempDir('duo-fuzz-');
  let c: Collection;
  let server: ServeChild | undefined;
  let client: HttpClient;
  let target: Target;
  const sentinel = `duo-fuzz-sentinel-${randomBytes(12).toString('hex')}`;

  before(async () => {
    c = await colourCollection(dir);
    // beside the collection's folder, and inside it but never indexed
    writeFileSync(join(dir, 'secret.txt'), sentinel);
    writeFileSync(join(c.root, 'warm', 'secret.jpg'), sentinel);
    server = await startServeChild(['--index', c.index, '--captions', c.captionIndex, '--cache-dir', join(dir, 'thumbs')]);
    client = new HttpClient(server.url);
    const rgb = { width: 48, height: 48, channels: 3 as const, background: { r: 200, g: 30, b: 40 } };
    const images: Images = { jpeg: await sharp({ create: rgb }).jpeg().toBuffer(), png: await sharp({ create: rgb }).png().toBuffer(), bomb: pngBomb() };
    const doc = (await (await fetch(`${server.url}/openapi.json`)).json()) as OpenApi;
    const sentinelPath = join(dir, 'secret.txt');
    target = { doc, ids: ['warm/red.jpg', 'warm/red2.jpg', 'warm/yellow.jpg', 'warm/white.jpg', 'cold/green.jpg', 'cold/blue.jpg', 'cold/black.jpg'], images, sentinel: sentinelPath, sentinelRelative: relative(c.root, sentinelPath), web: existsSync(join(packageRoot(), 'dist', 'web', 'index.html')) };
  });
  after(async () => {
    client?.close();
    await server?.stop();
  });

  it(`answers ${COUNT} random and mutated requests: no 5xx, one error shape, nothing from outside the collection, memory back to its level`, async () => {
    const s = server!;
    const forbidden = [Buffer.from(sentinel), Buffer.from('"typescript-eslint"')];
    const passwd = existsSync('/etc/passwd') ? readFileSync('/etc/passwd', 'utf8').split('\n')[0] : undefined;
    if (passwd) forbidden.push(Buffer.from(passwd));
    console.error(`http fuzz: seed ${SEED} (DUO_FUZZ_SEED=${SEED} DUO_FUZZ_COUNT=${COUNT} to repeat), ${COUNT} requests, ${CONCURRENCY} at a time`);

    // a warm-up round from another stream of the same generator: every code path allocates what it keeps
    const warmRng = new Rng(SEED ^ 0x9e3779b9);
    const warm = await run(client, Array.from({ length: WARM_UP }, () => fuzzCase(warmRng, target)), forbidden);
    const baseline = await settledMemory(s.url);

    const rng = new Rng(SEED);
    const cases = Array.from({ length: COUNT }, () => fuzzCase(rng, target));
    const started = performance.now();
    const { outcomes, failures } = await run(client, cases, forbidden);
    const seconds = (performance.now() - started) / 1000;
    const afterRun = await settledMemory(s.url);

    console.error(`http fuzz: ${COUNT} requests in ${seconds.toFixed(1)} s (seed ${SEED}), answers by route and status:\n${table(outcomes)}`);
    console.error(
      `http fuzz: RSS ${mib(baseline.rss)} MiB after the ${WARM_UP}-request warm-up, ${mib(afterRun.rss)} MiB after the run (bound +${mib(RSS_BOUND)} MiB); ` +
        `V8 heap in use ${mib(baseline.heapUsed)} → ${mib(afterRun.heapUsed)} MiB`,
    );

    if (process.env.DUO_FUZZ_VERBOSE) for (const e of s.errors) console.error(JSON.stringify(e).slice(0, 600));
    assert.deepEqual(failureReport([...warm.failures, ...failures]), [], `${warm.failures.length + failures.length} wrong answers (seed ${SEED})`);
    assert.equal(s.alive(), true, 'the server process is still running');
    const health = await fetch(`${s.url}/v1/health`);
    assert.equal(health.status, 200, 'and answers');
    const search = await fetch(`${s.url}/v1/search`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text: 'a yellow photo', mode: 'hybrid', k: 1 }) });
    assert.equal(((await search.json()) as { results: { id: string }[] }).results[0]?.id, 'warm/yellow.jpg', 'and still searches');
    assert.deepEqual(
      s.errors.map((e) => `${e.msg}: ${JSON.stringify(e.err ?? '').slice(0, 200)}`).slice(0, 10),
      [],
      'no error logged (a 5xx, or a request that errored after its answer)',
    );
    const served = outcomes.filter((o) => typeof o.status === 'number' && o.status < 300).length;
    if (COUNT >= 200) assert.ok(served > COUNT * 0.1, `a fuzz run that is all 4xx tests only the validators: ${served} of ${COUNT} answered 2xx`);
    assert.ok(afterRun.rss - baseline.rss < RSS_BOUND, `RSS ${mib(baseline.rss)} → ${mib(afterRun.rss)} MiB: more than ${mib(RSS_BOUND)} MiB above its level after the warm-up`);
  });
});
