/**
 * Memory stays flat under a mixed load: `duo serve` in its own process over the colour
 * collection answers 4,000 mixed requests (./soak.ts: text searches in both modes with many
 * distinct queries and stage-2 batch sizes, uploads, more like this, items, images, thumbnails at
 * every size, bad requests), and every 250 its memory is read from /metrics right after a full
 * garbage collection. Without that collection the readings would saw up and down by 100 MiB and
 * more: V8 lets the garbage of thousands of uploads build up before it collects (measured here:
 * 13 KB an upload, 190 MiB of heap before the first full collection at 12,000 uploads), a
 * period longer than this test. The product has no way to ask for a collection, so the test
 * starts the server with --expose-gc and a SIGUSR2 handler (./serve-child.ts).
 *
 * After a warm-up of 1,000 requests (JIT, allocator pools, thumbnails on disk), the mean of the
 * last three samples may not exceed the mean of the first three by more than the tolerances:
 * for what JavaScript holds (the V8 heap in use and the ArrayBuffers outside it: uploads,
 * decoded images, tensors), a tight one; for the resident set, a loose one (it also moves with
 * what the C allocator keeps and returns: glibc gives back ~100 MiB at once now and then).
 *
 * The engines' response and embedding caches are off (--no-cache): they grow by design until
 * their byte budgets (48 MiB), which a run this short does not reach; their byte accounting is
 * ./cache-bytes.test.ts, and `npm run bench:soak` runs 10,000 requests over the Flickr8k dev
 * index with them on. Everything else a request touches must come back to where it was.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { tempDir } from '../helpers.js';
import { colourCollection, type Collection } from '../serve/fixture.js';
import { mib, MiB, startServeChild, type ServeChild } from './serve-child.js';
import { runSoak, type SoakSample } from './soak.js';

const REQUESTS = 4_000;
const EVERY = 250;
/** samples in the warm-up (1,000 requests) */
const WARM_SAMPLES = 4;
/**
 * How far the end may sit above the start, after collections. Without a leak what JavaScript
 * holds moves by about ±1 MiB between samples; a leak of 2 KB a request (a retained upload,
 * request body or response would be more) adds 4 MiB over the 2,250 requests between the two
 * windows, in the heap or in ArrayBuffers. The resident set drifts by +2 MiB over such a run
 * (allocator arenas, V8 pages not yet returned); 16 MiB catches a native leak of 7 KB a request.
 */
const HELD_TOLERANCE = 4 * MiB;
const RSS_TOLERANCE = 16 * MiB;

const QUERIES = ['a red photo', 'something green', 'a blue square', 'yellow', 'white and black', 'a warm colour', 'cold blue', 'the red one', 'green grass', 'a black photo'];

const mean = (samples: SoakSample[], of: (s: SoakSample) => number) => samples.reduce((n, s) => n + of(s), 0) / samples.length;

describe('memory under a mixed soak', { timeout: 300_000 }, () => {
  const dir = tempDir('duo-memory-');
  let c: Collection;
  let server: ServeChild | undefined;

  before(async () => {
    c = await colourCollection(dir);
    server = await startServeChild(['--index', c.index, '--cache-dir', join(dir, 'thumbs'), '--no-cache'], { gcOnSignal: true });
  });
  after(async () => {
    await server?.stop();
  });

  it(`memory comes back to its level over ${REQUESTS} mixed requests`, async () => {
    const s = server!;
    const colour = (r: number, g: number, b: number) => ({ create: { width: 40 + (r % 40), height: 40 + (g % 40), channels: 3 as const, background: { r, g, b } } });
    const images = await Promise.all(
      [
        [220, 20, 30],
        [30, 200, 40],
        [20, 40, 220],
        [250, 250, 250],
      ].map(async ([r, g, b]) => ({ data: await sharp(colour(r!, g!, b!)).jpeg().toBuffer(), type: 'image/jpeg' })),
    );
    const result = await runSoak({
      url: s.url,
      requests: REQUESTS,
      sampleEvery: EVERY,
      concurrency: 4,
      seed: 7,
      queries: QUERIES,
      ids: ['warm/red.jpg', 'warm/red2.jpg', 'warm/yellow.jpg', 'warm/white.jpg', 'cold/green.jpg', 'cold/blue.jpg', 'cold/black.jpg'],
      images,
      hybrid: true,
      collectGarbage: () => s.collectGarbage(),
    });
    const measured = result.samples.slice(WARM_SAMPLES - 1);
    const [first, last] = [measured.slice(0, 3), measured.slice(-3)];
    const rss = (x: SoakSample) => x.live!.rss;
    const held = (x: SoakSample) => x.live!.heapUsed + x.live!.external;
    console.error(`memory soak: ${REQUESTS} requests in ${result.seconds.toFixed(1)} s; by status ${JSON.stringify(result.byStatus)}`);
    console.error(`memory soak: after a full collection every ${EVERY} requests, RSS MiB ${result.samples.map((x) => mib(rss(x))).join(', ')}`);
    console.error(`memory soak: V8 heap in use + ArrayBuffers MiB ${result.samples.map((x) => mib(held(x))).join(', ')}`);
    console.error(`memory soak: without the collection, RSS MiB ${result.samples.map((x) => mib(x.rss)).join(', ')}`);

    assert.deepEqual(result.failures.slice(0, 10), [], 'no 5xx, every request answered');
    assert.equal(s.alive(), true);
    assert.ok((result.byStatus['200'] ?? 0) > REQUESTS * 0.6, `most requests are served: ${JSON.stringify(result.byStatus)}`);
    const [heldStart, heldEnd] = [mean(first, held), mean(last, held)];
    assert.ok(heldEnd - heldStart < HELD_TOLERANCE, `what JavaScript holds (heap and ArrayBuffers) grew from ${mib(heldStart)} MiB to ${mib(heldEnd)} MiB: more than ${mib(HELD_TOLERANCE)} MiB`);
    const [rssStart, rssEnd] = [mean(first, rss), mean(last, rss)];
    assert.ok(rssEnd - rssStart < RSS_TOLERANCE, `RSS after collections grew from ${mib(rssStart)} MiB to ${mib(rssEnd)} MiB: more than ${mib(RSS_TOLERANCE)} MiB`);
  });
});
