/** `duo serve` as a process: settings, warm-up before ready, structured logs, graceful shutdown. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import type { CrossEncoder } from '../../src/models/reranker.js';
import { SearchEngine } from '../../src/search/engine.js';
import { buildApp } from '../../src/serve/app.js';
import { startServer } from '../../src/serve/server.js';
import { parseSettings } from '../../src/serve/settings.js';
import { packageRoot } from '../../src/util/package-root.js';
import { tempDir } from '../helpers.js';
import { colourCollection, openEngines, type Collection } from './fixture.js';

const BIN = join(packageRoot(), 'bin', 'duo.js');

/** POSTs JSON over a real connection */
function postJson(url: string, path: string, body: object): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      let data = '';
      res.on('data', (d: Buffer) => (data += d));
      res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(data) as unknown }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

describe('duo serve', () => {
  let c: Collection;
  const dir = tempDir('duo-serve-');
  before(async () => {
    c = await colourCollection(dir);
  });

  it('settings: the config section, then flags; errors name the flag or the file key', () => {
    const s = parseSettings({ maxK: 50, port: 9000, onOverload: 'stage1' }, { port: 0, maxK: undefined }, 'duo.yaml');
    assert.equal(s.port, 0, 'a flag wins');
    assert.equal(s.maxK, 50, 'the file fills the rest');
    assert.equal(s.onOverload, 'stage1');
    assert.equal(s.maxK1, 1000, 'defaults');
    assert.equal(s.host, '127.0.0.1');
    assert.throws(() => parseSettings({ maxK: 0 }, {}, 'duo.yaml'), /duo\.yaml: serve\.maxK: Too small/);
    assert.throws(() => parseSettings({}, { maxK: 0 }, 'duo.yaml'), /--max-k: Too small/);
    assert.throws(() => parseSettings({ colour: 1 }, {}, 'duo.yaml'), /duo\.yaml: serve\.colour: unknown key/);
    assert.throws(() => parseSettings({}, { onOverload: 'panic' }), /--on-overload: Invalid option/);
  });

  it('startServer warms the models, listens, answers, and closes the engines it opened', async () => {
    const server = await startServer({ ...parseSettings({}, { port: 0, logLevel: 'silent', cacheDir: join(dir, 'thumbs') }), index: c.index, captions: c.captionIndex, webRoot: false, signals: [] });
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const r = await postJson(server.url, '/v1/search', { text: 'a yellow photo', mode: 'hybrid', k: 1 });
    assert.equal(r.status, 200);
    assert.equal((r.json as { results: { id: string }[] }).results[0]!.id, 'warm/yellow.jpg');
    const stats = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(stats, /duo_cache_hits_total\{index="main",cache="embeddings"\} 0/, 'the warm-up query was not this one');
    assert.match(stats, /duo_stage2_rows_total\{source="hit"\} 0/, 'the colour BLIP stores no rows: nothing to cache (the starter pack does)');
    await server.close();
    await server.closed;
    await assert.rejects(fetch(`${server.url}/v1/health`), 'no longer listening');
  });

  it('closing drains the requests in flight: they finish, new connections are refused', async () => {
    const engines = await openEngines(c);
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    let entered = false;
    const slow: CrossEncoder = {
      id: 'slow',
      score: async (_q, candidates) => {
        entered = true;
        await gate;
        return { scores: candidates.map(() => 0), ms: 0, calls: 1, batchSize: candidates.length };
      },
      dispose: async () => {},
    };
    const app = await buildApp({ engine: new SearchEngine({ store: engines.engine.store, encoder: engines.engine.encoder, reranker: slow }), cacheDir: tempDir(), webRoot: false });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
    const inFlight = postJson(url, '/v1/search', { text: 'red', mode: 'hybrid', k: 2 });
    while (!entered) await new Promise((r) => setTimeout(r, 5));
    const closing = app.close();
    await new Promise((r) => setTimeout(r, 50));
    await assert.rejects(fetch(`${url}/v1/health`), 'a new connection is refused while draining');
    open();
    const r = await inFlight;
    assert.equal(r.status, 200, 'the request in flight was answered');
    assert.equal((r.json as { fallback?: string }).fallback, undefined);
    await closing;
    await engines.close();
  });

  describe('the command (compiled)', { skip: !existsSync(join(packageRoot(), 'dist', 'cli', 'main.js')) && 'dist/ is not built: run npm run build (npm test does)' }, () => {
    const children: ReturnType<typeof spawn>[] = [];
    after(() => {
      for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    });

    it('logs JSON lines, is ready after the warm-up, serves the API and the page, and exits 0 on SIGTERM', async () => {
      const child = spawn(process.execPath, [BIN, 'serve', '--index', c.index, '--port', '0', '--cache-dir', join(dir, 'cli-thumbs')], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
      children.push(child);
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr += d));
      const lines: { msg: string; url?: string; level: number; [k: string]: unknown }[] = [];
      const ready = new Promise<string>((resolve, reject) => {
        createInterface({ input: child.stdout! }).on('line', (line) => {
          const entry = JSON.parse(line) as (typeof lines)[number];
          lines.push(entry);
          if (entry.msg === 'ready') resolve(entry.url!);
        });
        child.on('exit', (code) => reject(new Error(`exited ${code}: ${stderr}`)));
      });
      const url = await ready;
      const loaded = lines.find((l) => l.msg === 'models loaded and warm')!;
      assert.equal(loaded.items, 7);
      assert.equal(typeof loaded.warmMs, 'number');
      assert.equal((await fetch(`${url}/v1/ready`)).status, 200);
      const r = await postJson(url, '/v1/search', { text: 'something green', k: 1 });
      assert.equal((r.json as { results: { id: string }[] }).results[0]!.id, 'cold/green.jpg');
      const page = await fetch(`${url}/`);
      assert.equal(page.status, 200, 'the built web page');
      assert.match(await page.text(), /<title>duo-search<\/title>/);
      const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
      child.kill('SIGTERM');
      assert.equal(await exited, 0, stderr);
      const completed = lines.find((l) => l.msg === 'request completed' && l.route === '/v1/search');
      assert.deepEqual([completed?.method, completed?.status], ['POST', 200]);
      assert.ok(lines.some((l) => l.msg === 'shutting down: finishing the requests in flight'));
    });

    it('refuses bad settings before loading anything, naming the flag or the config key', async () => {
      const run = (args: string[]) =>
        new Promise<{ code: number | null; stderr: string }>((resolve) => {
          const child = spawn(process.execPath, [BIN, 'serve', ...args], { cwd: dir });
          let stderr = '';
          child.stderr.on('data', (d: Buffer) => (stderr += d));
          child.on('exit', (code) => resolve({ code, stderr }));
        });
      const flag = await run(['--index', c.index, '--max-k', '0']);
      assert.equal(flag.code, 2);
      assert.match(flag.stderr, /--max-k: Too small/);
      writeFileSync(join(dir, 'duo.yaml'), `index: ${c.index}\nserve:\n  queueLength: -1\n`);
      const file = await run([]);
      assert.equal(file.code, 2);
      assert.match(file.stderr, /duo\.yaml: serve\.queueLength: Too small/);
      const missing = await run(['--index', join(dir, 'nope.duo')]);
      assert.equal(missing.code, 66);
    });
  });
});
