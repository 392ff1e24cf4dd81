/**
 * A mixed soak against a running `duo serve`, for the memory test (./memory.test.ts) and the
 * soak bench (bench/soak.bench.ts): text searches in both modes with many distinct queries and
 * options (so the response and embedding caches churn), image uploads, "more like this",
 * items and images, thumbnails at every size, and bad requests; the server's RSS and V8 heap are
 * read from its /metrics every `sampleEvery` requests. Seeded: the same seed sends the same
 * requests in the same order (their interleaving over `concurrency` connections aside).
 */
import { HttpClient, type Sent } from './http-client.js';
import { Rng } from './fuzz-cases.js';
import { memoryOf, settledMemory, type MemorySample } from './serve-child.js';

export interface SoakInput {
  url: string;
  requests: number;
  sampleEvery: number;
  concurrency: number;
  seed: number;
  /** text queries to start from (each request varies one: a word more, another k, offset, filter) */
  queries: string[];
  /** ids the index holds */
  ids: string[];
  /** image files to upload (their bytes) */
  images: { data: Buffer; type: string }[];
  /** the index has a cross-encoder: hybrid searches too */
  hybrid: boolean;
  /** called after each sample (a progress line) */
  onSample?: (s: SoakSample) => void;
  /** a full collection in the server (ServeChild.collectGarbage): each sample then also reads what is live */
  collectGarbage?: () => Promise<void>;
}

export interface SoakSample extends MemorySample {
  /** requests answered when it was taken */
  requests: number;
  seconds: number;
  /** the same, right after a full collection (with `collectGarbage`) */
  live?: MemorySample;
}

export interface SoakResult {
  samples: SoakSample[];
  /** answers by status, over all requests */
  byStatus: Record<string, number>;
  /** answers by kind of request, then status */
  byKind: Record<string, Record<string, number>>;
  seconds: number;
  /** 5xx answers and requests that got no answer, with what was sent */
  failures: string[];
}

const VARIATIONS = ['dog', 'in the snow', 'on the beach', 'red', 'two children', 'running', 'water', 'a man', 'grass', 'ball', 'black and white', 'playing'];
const enc = encodeURIComponent;

function json(path: string, body: unknown): Sent {
  return { method: 'POST', path, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
}

function upload(path: string, fields: Record<string, string>, image: { data: Buffer; type: string }, rng: Rng): Sent {
  const boundary = `----soak${rng.int(1e9)}`;
  const parts: Buffer[] = Object.entries(fields).map(([name, value]) => Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`));
  parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="q"\r\nContent-Type: ${image.type}\r\n\r\n`), image.data, Buffer.from(`\r\n--${boundary}--\r\n`));
  return { method: 'POST', path, headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, body: Buffer.concat(parts) };
}

/** One request of the mix, and its kind. */
export function soakRequest(rng: Rng, s: Pick<SoakInput, 'queries' | 'ids' | 'images' | 'hybrid'>): { kind: string; request: Sent } {
  const text = () => {
    const q = rng.pick(s.queries);
    return rng.chance(0.6) ? `${q} ${rng.pick(VARIATIONS)}` : q;
  };
  const k = () => rng.pick([5, 10, 10, 20, 50, 100]);
  const id = () => rng.pick(s.ids);
  return rng.weighted<() => { kind: string; request: Sent }>([
    [
      25,
      () => ({
        kind: 'text stage1',
        request: json('/v1/search', { text: text(), k: k(), ...(rng.chance(0.2) ? { offset: rng.pick([10, 20, 50]) } : {}), ...(rng.chance(0.1) ? { mmr: 0.5 } : {}), ...(rng.chance(0.1) ? { where: { bytes: { gte: rng.int(50_000) } } } : {}) }),
      }),
    ],
    [
      s.hybrid ? 20 : 0,
      () => ({
        kind: 'text hybrid',
        // k1 anywhere in 10–200: stage 2's batches come in every size
        request: json('/v1/search', { text: text(), mode: 'hybrid', k: rng.pick([5, 10, 20]), k1: 10 + rng.int(191), ...(rng.chance(0.3) ? { fusion: rng.pick(['replace', 'rrf', 'weighted']) } : {}) }),
      }),
    ],
    [10, () => ({ kind: 'image upload', request: upload('/v1/search/image', { k: String(k()), ...(rng.chance(0.3) ? { mode: 'hybrid' } : {}) }, rng.pick(s.images), rng) })],
    [15, () => ({ kind: 'more like this', request: { method: 'GET', path: `/v1/items/${enc(id())}/similar?k=${k()}${rng.chance(0.2) ? '&mmr=0.5&k1=50' : ''}` } })],
    [15, () => ({ kind: 'thumbnail', request: { method: 'GET', path: `/v1/images/${enc(id())}/thumbnail?size=${rng.pick([128, 256, 512])}` } })],
    [5, () => ({ kind: 'item or image', request: { method: 'GET', path: rng.chance(0.5) ? `/v1/items/${enc(id())}` : `/v1/images/${enc(id())}` } })],
    [
      10,
      () => ({
        kind: 'bad request',
        request: rng.pick<Sent>([
          json('/v1/search', { text: '' }),
          json('/v1/search', { text: text(), k: 0 }),
          json('/v1/search', { text: text(), k: 1e9 }),
          json('/v1/search', { text: text(), colour: 'red' }),
          json('/v1/search', { text: 'x'.repeat(600 + rng.int(2_000)) }),
          json('/v1/search', { text: text(), where: { bytes: { gte: 'soon' } } }),
          { method: 'POST', path: '/v1/search', headers: { 'content-type': 'application/json' }, body: `{"text": "${text()}"` },
          { method: 'POST', path: '/v1/search', headers: { 'content-type': 'text/plain' }, body: text() },
          { method: 'GET', path: `/v1/images/${enc(id())}/thumbnail?size=${rng.pick([0, 64, 300, 1024, 99999])}` },
          { method: 'GET', path: `/v1/items/${enc(`missing/${rng.int(1e6)}.jpg`)}/similar` },
          { method: 'GET', path: `/v1/images/..%2f..%2f${rng.int(1e6)}` },
          { method: 'GET', path: `/v1/no-such-route/${rng.int(1e6)}` },
          upload('/v1/search/image', { k: '5' }, { data: Buffer.from(`not an image ${rng.int(1e6)}`), type: 'image/jpeg' }, rng),
        ]),
      }),
    ],
  ])();
}

export async function runSoak(input: SoakInput): Promise<SoakResult> {
  const client = new HttpClient(input.url);
  const rng = new Rng(input.seed);
  const samples: SoakSample[] = [];
  const byStatus: Record<string, number> = {};
  const byKind: Record<string, Record<string, number>> = {};
  const failures: string[] = [];
  const started = performance.now();
  let sent = 0;
  try {
    while (sent < input.requests) {
      const round = Array.from({ length: Math.min(input.sampleEvery, input.requests - sent) }, () => soakRequest(rng, input));
      let next = 0;
      const worker = async () => {
        while (next < round.length) {
          const { kind, request } = round[next++]!;
          let status: string;
          try {
            const a = await client.send(request);
            status = String(a.status);
            if (a.status >= 500) failures.push(`${kind}: ${request.method} ${request.path} → ${a.status} ${a.body.toString('utf8').slice(0, 200)}`);
          } catch (error) {
            status = 'no answer';
            failures.push(`${kind}: ${request.method} ${request.path} → ${(error as Error).message}`);
          }
          byStatus[status] = (byStatus[status] ?? 0) + 1;
          const kinds = (byKind[kind] ??= {});
          kinds[status] = (kinds[status] ?? 0) + 1;
        }
      };
      await Promise.all(Array.from({ length: input.concurrency }, worker));
      sent += round.length;
      // the lowest of a few readings: the level RSS is at, not a collection caught half-way
      const memory = await settledMemory(input.url, 3, 100);
      const seconds = (performance.now() - started) / 1000;
      let live: MemorySample | undefined;
      if (input.collectGarbage) {
        await input.collectGarbage();
        live = await memoryOf(input.url);
      }
      const sample = { requests: sent, seconds, ...memory, ...(live ? { live } : {}) };
      samples.push(sample);
      input.onSample?.(sample);
    }
  } finally {
    client.close();
  }
  return { samples, byStatus, byKind, seconds: (performance.now() - started) / 1000, failures };
}
