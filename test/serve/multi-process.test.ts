/**
 * More than one process: two `duo serve` processes over one PostgreSQL store (the project's
 * local PostgreSQL, `npm run pg`) answer the same query identically, and both see what a
 * writer adds afterwards.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { imageIndexInfo } from '../../src/index/build-index.js';
import { indexImages } from '../../src/index/index-images.js';
import { openStore } from '../../src/index/open-store.js';
import { BlipItmReranker } from '../../src/models/blip/blip-itm.js';
import { loadEncoder } from '../../src/models/load-encoder.js';
import { packageRoot } from '../../src/util/package-root.js';
import { startPgProcess, storeUrl, type PgProcess } from '../index/pg-helpers.js';
import { COLOURS, tempDir, writeColourImage } from '../helpers.js';
import { BLIP, CLIP } from './fixture.js';

const BIN = join(packageRoot(), 'bin', 'duo.js');
const built = existsSync(join(packageRoot(), 'dist', 'cli', 'main.js'));

/** a compiled `duo serve` on a free port; resolves with its URL once it logs ready */
function serve(args: string[], cwd: string): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d));
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const entry = JSON.parse(line) as { msg: string; url?: string };
      if (entry.msg === 'ready') resolve({ url: entry.url!, child });
    });
    child.once('exit', (code) => reject(new Error(`duo serve exited ${code}: ${stderr}`)));
  });
}

async function search(url: string, body: object): Promise<{ results: { id: string; score: number; rank: number; stage1: object; stage2?: object }[]; fallback?: string }> {
  const r = await fetch(`${url}/v1/search`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal(r.status, 200, await r.clone().text());
  return (await r.json()) as never;
}

describe('two duo serve processes over one PostgreSQL store', { skip: !built && 'dist/ is not built: run npm run build (npm test does)', timeout: 180_000 }, () => {
  const data = tempDir('duo-pg-serve-');
  const root = tempDir('duo-pg-photos-');
  const work = tempDir('duo-pg-work-');
  let pg: PgProcess;
  let url: string;
  const servers: ChildProcess[] = [];
  const names = Object.keys(COLOURS);

  before(async () => {
    pg = await startPgProcess(data);
    url = storeUrl(pg, 'photos');
    await Promise.all(names.filter((n) => n !== 'yellow').map((n) => writeColourImage(join(root, `${n}.jpg`), COLOURS[n]!)));
    const encoder = await loadEncoder(CLIP);
    const blip = await BlipItmReranker.load(BLIP);
    try {
      const store = await openStore(url, { write: true, create: await imageIndexInfo({ root, encoder, modelSpec: CLIP, reranker: blip, rerankerSpec: BLIP }) });
      await indexImages(store, names.filter((n) => n !== 'yellow').map((n) => ({ id: `${n}.jpg`, source: join(root, `${n}.jpg`), metadata: { colour: n } })), { encoder, reranker: blip });
      await store.close();
    } finally {
      await encoder.dispose();
      await blip.dispose();
    }
  });
  after(async () => {
    for (const child of servers) {
      if (child.exitCode !== null) continue;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    await pg?.stop();
  });

  it('answer the same query identically, and both see a later write', async () => {
    const [a, b] = await Promise.all([serve(['--index', url, '--cache-dir', join(work, 'a')], work), serve(['--index', url, '--cache-dir', join(work, 'b')], work)]);
    servers.push(a.child, b.child);
    for (const body of [{ text: 'a red photo', k: 4 }, { text: 'a blue photo', mode: 'hybrid', k: 3 }, { text: 'green', k: 5, where: { colour: { in: ['green', 'white', 'black'] } } }]) {
      const [ra, rb] = await Promise.all([search(a.url, body), search(b.url, body)]);
      assert.ok(ra.results.length > 0);
      assert.deepEqual(
        ra.results.map((h) => [h.id, h.rank, h.score, h.stage1, h.stage2]),
        rb.results.map((h) => [h.id, h.rank, h.score, h.stage1, h.stage2]),
        JSON.stringify(body),
      );
      assert.equal(ra.fallback, rb.fallback);
    }
    const [sa, sb] = await Promise.all([a.url, b.url].map(async (u) => (await (await fetch(`${u}/v1/items/red.jpg/similar?k=3`)).json()) as { results: unknown[] }));
    assert.deepEqual(sa!.results, sb!.results);
    // a third process writes: both servers see the new item
    await writeColourImage(join(root, 'yellow.jpg'), COLOURS.yellow!);
    const encoder = await loadEncoder(CLIP);
    const blip = await BlipItmReranker.load(BLIP);
    const writer = await openStore(url, { write: true });
    await indexImages(writer, [{ id: 'yellow.jpg', source: join(root, 'yellow.jpg'), metadata: { colour: 'yellow' } }], { encoder, reranker: blip });
    await writer.close();
    await encoder.dispose();
    await blip.dispose();
    const [ya, yb] = await Promise.all([search(a.url, { text: 'a yellow photo', k: 1 }), search(b.url, { text: 'a yellow photo', k: 1 })]);
    assert.equal(ya.results[0]!.id, 'yellow.jpg');
    assert.deepEqual(ya.results, yb.results);
    const counts = await Promise.all([a.url, b.url].map(async (u) => ((await (await fetch(`${u}/v1/collection`)).json()) as { items: number }).items));
    assert.deepEqual(counts, [names.length, names.length]);
  });
});
