/**
 * `duo serve` keeps answering while `duo index` updates its index folder, and switches to each
 * new commit whole: every answer holds exactly the items of one commit, never a half-built index.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { startServer } from '../../src/serve/server.js';
import { parseSettings } from '../../src/serve/settings.js';
import { runDuo, tempDir, writeColourImage } from '../helpers.js';
import { CLIP, colourCollection } from './fixture.js';

const ADDED = 40;
const STEP = 4;

describe('duo serve while the index is rebuilt', () => {
  const dir = tempDir();

  it('answers throughout and serves each new commit whole', async () => {
    const c = await colourCollection(dir);
    const server = await startServer({ ...parseSettings({}, { port: 0, logLevel: 'silent', cacheDir: join(dir, 'thumbs'), reloadIntervalMs: 20 }), index: c.index, webRoot: false, signals: [] });
    try {
      const search = async () => {
        const r = await fetch(`${server.url}/v1/search`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text: 'a red photo', k: 100 }) });
        assert.equal(r.status, 200, await r.clone().text());
        return ((await r.json()) as { results: { id: string }[] }).results.map((x) => x.id);
      };
      const before = (await search()).length;
      assert.equal(before, 7);

      // 40 new photos, committed 4 at a time by a real `duo index` run, while four clients keep asking
      mkdirSync(join(c.root, 'new'));
      for (let i = 0; i < ADDED; i++) await writeColourImage(join(c.root, 'new', `grey-${String(i).padStart(2, '0')}.jpg`), [100 + i * 3, 100 + i * 3, 100 + i * 3]);
      const commits = new Set(Array.from({ length: ADDED / STEP + 1 }, (_, j) => before + j * STEP));
      const seen = new Map<number, number>();
      let indexing = true;
      const client = async () => {
        while (indexing) {
          const ids = await search();
          seen.set(ids.length, (seen.get(ids.length) ?? 0) + 1);
          assert.ok(commits.has(ids.length), `an answer held ${ids.length} items: not a commit (${[...commits].join(', ')})`);
          assert.equal(new Set(ids).size, ids.length, 'an item answered twice');
        }
      };
      // settled at once, so a failing client is reported here, not as an unhandled rejection while duo index runs
      const clients = Array.from({ length: 4 }, () => client().then(() => undefined, (error: unknown) => error));
      const run = await runDuo(['index', c.root, '--index', c.index, '--model', CLIP, '--batch-size', '2', '--checkpoint-every', String(STEP), '--json']);
      await server.reload();
      indexing = false;
      for (const failure of await Promise.all(clients)) if (failure) throw failure;
      assert.equal(run.code, 0, run.stderr);
      assert.equal((JSON.parse(run.stdout) as { encoded: number }).encoded, ADDED);

      const after = await search();
      assert.equal(after.length, before + ADDED, 'the server serves the finished index');
      console.error(`answers by item count (commit): ${[...seen].sort((a, b) => a[0] - b[0]).map(([n, k]) => `${n}: ${k}`).join(', ')}`);
      // answers came from several commits along the way, not only the first and the last
      assert.ok(seen.size >= 3, `answers saw ${seen.size} commits: ${[...seen.keys()].join(', ')}`);
      // the rest of the API follows the swap too: a new photo's file and the collection's count
      assert.equal((await fetch(`${server.url}/v1/images/${encodeURIComponent('new/grey-39.jpg')}`)).status, 200);
      const collection = (await (await fetch(`${server.url}/v1/collection`)).json()) as { items: number };
      assert.equal(collection.items, before + ADDED);
    } finally {
      await server.close();
    }
  });
});
