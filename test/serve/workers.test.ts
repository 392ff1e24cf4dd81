/**
 * `duo serve --workers 2` (compiled CLI): the primary logs ready once both workers are, both
 * answer on the one port (port 0: the workers share the port the first one got), a killed
 * worker is replaced and the server keeps answering, and SIGTERM drains and stops them all.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, it } from 'node:test';
import { parseWorkers } from '../../src/serve/cluster.js';
import { packageRoot } from '../../src/util/package-root.js';
import { tempDir } from '../helpers.js';
import { colourCollection } from './fixture.js';

const BIN = join(packageRoot(), 'bin', 'duo.js');
const built = existsSync(join(packageRoot(), 'dist', 'cli', 'main.js'));

interface Line {
  msg: string;
  url?: string;
  worker?: number;
  workers?: number[];
}

/** GET on a fresh connection (so the primary hands each to the next worker): status and the worker that answered */
function get(url: string): Promise<{ status: number; worker: number }> {
  return new Promise((resolve, reject) => {
    const r = request(`${url}/v1/collection`, { agent: false, headers: { connection: 'close' } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, worker: Number(res.headers['duo-worker']) }));
    });
    r.on('error', reject);
    r.end();
  });
}

describe('parseWorkers', () => {
  it('reads a count or auto, and refuses anything else', () => {
    assert.equal(parseWorkers(undefined), 1);
    assert.equal(parseWorkers('3'), 3);
    assert.ok(parseWorkers('auto') >= 1);
    for (const bad of ['0', '-1', 'two', '1.5']) assert.throws(() => parseWorkers(bad), /--workers/);
  });
});

describe('duo serve --workers 2', { skip: !built && 'dist/ is not built: run npm run build (npm test does)', timeout: 120_000 }, () => {
  const dir = tempDir('duo-workers-');
  let child: ChildProcess | undefined;
  after(async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child!.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    }
  });

  it('answers from both workers, replaces a killed one, and drains on SIGTERM', async () => {
    const c = await colourCollection(dir);
    child = spawn(process.execPath, [BIN, 'serve', '--index', c.index, '--port', '0', '--workers', '2', '--cache-dir', join(dir, 'thumbs')], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d));
    const lines: Line[] = [];
    const waiters: { test: (l: Line) => boolean; resolve: (l: Line) => void }[] = [];
    createInterface({ input: child.stdout! }).on('line', (text) => {
      const line = JSON.parse(text) as Line;
      lines.push(line);
      for (const w of waiters.splice(0)) {
        if (w.test(line)) w.resolve(line);
        else waiters.push(w);
      }
    });
    const exit = new Promise<number | null>((r) => child!.once('exit', (code) => r(code)));
    const next = (test: (l: Line) => boolean) =>
      Promise.race([
        new Promise<Line>((resolve) => {
          const seen = lines.find(test);
          if (seen) resolve(seen);
          else waiters.push({ test, resolve });
        }),
        exit.then((code) => Promise.reject(new Error(`duo serve exited ${code}: ${stderr}`))),
      ]);

    const ready = await next((l) => l.msg === 'ready');
    assert.equal(ready.workers?.length, 2);
    assert.match(ready.url!, /:\d+$/);
    assert.ok(!ready.url!.endsWith(':0'));
    // both workers answer on the one port
    const answered = new Set<number>();
    for (let i = 0; i < 20 && answered.size < 2; i++) {
      const r = await get(ready.url!);
      assert.equal(r.status, 200);
      answered.add(r.worker);
    }
    assert.deepEqual([...answered].sort(), [...ready.workers!].sort());

    // a worker killed outright is replaced, and the server answers throughout
    const victim = ready.workers![0]!;
    process.kill(victim, 'SIGKILL');
    const replaced = await next((l) => l.msg === 'worker ready' && !ready.workers!.includes(l.worker!));
    assert.ok(lines.some((l) => l.msg === 'worker died: replacing it' && l.worker === victim));
    const now = new Set<number>();
    for (let i = 0; i < 20 && now.size < 2; i++) {
      const r = await get(ready.url!);
      assert.equal(r.status, 200);
      now.add(r.worker);
    }
    assert.deepEqual([...now].sort(), [ready.workers![1]!, replaced.worker!].sort());

    // SIGTERM: every worker closes, then the primary exits 0
    child.kill('SIGTERM');
    assert.equal(await exit, 0, stderr);
    assert.equal(lines.filter((l) => l.msg === 'worker closed').length, 2);
  });
});
