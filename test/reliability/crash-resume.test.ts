/**
 * `duo index` killed with SIGKILL at random points resumes to the index a clean run builds.
 * A segment every two images makes 24 checkpoints and, past 16 segments, compactions, so the
 * kills land while encoding, while a segment or the manifest is written, and while segments
 * are compacted. After every kill the index must open as it was last committed (each row equal
 * to the clean run's), and the next run must take the lock over at once and go on from there.
 * Seeded: DUO_CRASH_SEED=<n> replays a run; the kill points are printed.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { FolderStore } from '../../src/index/folder-store.js';
import { packageRoot } from '../../src/util/package-root.js';
import { seeded } from '../../src/util/random.js';
import { runDuo, tempDir, writeColourImage } from '../helpers.js';

const CLIP = join(packageRoot(), 'models', 'colour-clip');
// the starter pack's cross-encoder stores an image side per row (.stage2 files), so kills also cut those writes
const CROSS = join(packageRoot(), 'models', 'starter');
const IMAGES = 48;
const SEED = Number(process.env.DUO_CRASH_SEED ?? 20261128);

const indexArgs = (photos: string, index: string) => ['index', photos, '--index', index, '--model', CLIP, '--reranker', CROSS, '--batch-size', '2', '--checkpoint-every', '2', '--json'];

/** Rows committed by the manifest (0 before the first commit, or while it cannot be read). */
function committedRows(index: string): number {
  try {
    const m = JSON.parse(readFileSync(join(index, 'manifest.json'), 'utf8')) as { segments: { rows: number; deleted: number }[] };
    return m.segments.reduce((a, s) => a + s.rows - s.deleted, 0);
  } catch {
    return 0;
  }
}

/**
 * How a run is killed: `after` — with SIGKILL `delayMs` after the manifest first commits `rows`
 * rows (anywhere between checkpoints); `write` — at the `nth` file event in the folder for a
 * file the manifest does not name (a temporary file being written, a segment renamed into place
 * but not committed yet): in the middle of a checkpoint or, counting only once the manifest
 * holds `minSegments` (17: the commit that makes the writer compact), of a compaction.
 */
type KillPoint = { after: { rows: number; delayMs: number } } | { write: { nth: number; minSegments?: number } };

function runAndKill(args: string[], index: string, at: KillPoint): Promise<{ killed: boolean; code: number | null; stderr: string; event?: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [join(packageRoot(), 'bin', 'duo.js'), ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let event: string | undefined;
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    let armed = false;
    let poll: NodeJS.Timeout | undefined;
    let watcher: FSWatcher | undefined;
    if ('after' in at) {
      poll = setInterval(() => {
        if (armed || committedRows(index) < at.after.rows) return;
        armed = true;
        setTimeout(() => child.kill('SIGKILL'), at.after.delayMs);
      }, 2);
    } else {
      let seen = 0;
      const committed = new Set(committedNames(index));
      watcher = watch(index, (_type, name) => {
        if (armed || !name || committed.has(name) || name.startsWith('write.lock')) return;
        // (a compaction writes segment files first; a manifest event here is still the commit before it)
        if (at.write.minSegments && (committedNames(index).length >> 1 < at.write.minSegments || name.startsWith('manifest'))) return;
        if (++seen < at.write.nth) return;
        armed = true;
        event = name;
        child.kill('SIGKILL');
      });
    }
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearInterval(poll);
      watcher?.close();
      resolvePromise({ killed: signal === 'SIGKILL', code, stderr, event });
    });
  });
}

/** The files the manifest names (and the manifest itself); none before the first commit. */
function committedNames(index: string): string[] {
  if (!existsSync(join(index, 'manifest.json'))) return [];
  const m = JSON.parse(readFileSync(join(index, 'manifest.json'), 'utf8')) as { segments: { name: string }[] };
  return ['manifest.json', ...m.segments.flatMap((s) => [`${s.name}.seg`, `${s.name}.stage2`])];
}

interface Snapshot {
  ids: string[];
  vectors: Map<string, Float32Array>;
  regions: Map<string, Float32Array | undefined>;
  metadata: Map<string, unknown>;
}

async function snapshot(index: string): Promise<Snapshot> {
  const store = await FolderStore.open(index);
  try {
    const ids: string[] = [];
    for await (const { id } of store.list()) ids.push(id);
    ids.sort();
    const items = await store.get(ids);
    const regions = await store.regions(ids);
    return {
      ids,
      vectors: new Map(ids.map((id, i) => [id, items[i]!.vector])),
      regions: new Map(ids.map((id, i) => [id, regions[i]])),
      metadata: new Map(ids.map((id, i) => [id, items[i]!.metadata])),
    };
  } finally {
    await store.close();
  }
}

/** Every row of `part` equals the clean index's row of the same id (vectors, stage-2 rows, metadata). */
function assertRowsOf(part: Snapshot, clean: Snapshot, context: string): void {
  for (const id of part.ids) {
    const want = clean.vectors.get(id);
    assert.ok(want, `${context}: ${id} is not in the clean index`);
    const got = part.vectors.get(id)!;
    for (let j = 0; j < want.length; j++) assert.ok(Math.abs(got[j]! - want[j]!) < 1e-5, `${context}: ${id} vector[${j}] ${got[j]} vs ${want[j]}`);
    const r = part.regions.get(id);
    const rw = clean.regions.get(id);
    assert.equal(r?.length, rw?.length, `${context}: ${id} stage-2 row length`);
    for (let j = 0; j < (rw?.length ?? 0); j++) assert.ok(Math.abs(r![j]! - rw![j]!) <= 1e-3 * Math.max(1, Math.abs(rw![j]!)), `${context}: ${id} stage-2 row[${j}]`);
    assert.deepEqual(part.metadata.get(id), clean.metadata.get(id), `${context}: ${id} metadata`);
  }
}

/** Files the manifest does not name: leftovers of a killed writer, or its lock. */
function strayFiles(index: string): string[] {
  const named = new Set(committedNames(index));
  return readdirSync(index).filter((f) => !named.has(f));
}

describe('duo index killed with SIGKILL', () => {
  it('resumes after every kill and ends with the index a clean run builds', async () => {
    const dir = tempDir();
    const photos = join(dir, 'photos');
    mkdirSync(join(photos, 'a'), { recursive: true });
    mkdirSync(join(photos, 'b'));
    // 48 distinct colours around the hue circle, in two folders
    for (let i = 0; i < IMAGES; i++) {
      const h = (i / IMAGES) * 6;
      const x = Math.round(255 * (1 - Math.abs((h % 2) - 1)));
      const rgb = ([[255, x, 0], [x, 255, 0], [0, 255, x], [0, x, 255], [x, 0, 255], [255, 0, x]] as [number, number, number][])[Math.floor(h)]!;
      await writeColourImage(join(photos, i % 2 ? 'a' : 'b', `hue-${String(i).padStart(2, '0')}.jpg`), rgb);
    }
    const cleanIndex = join(dir, 'clean.duo');
    const clean = await runDuo(indexArgs(photos, cleanIndex));
    assert.equal(clean.code, 0, clean.stderr);
    const cleanReport = JSON.parse(clean.stdout) as { encoded: number; segments: number };
    assert.equal(cleanReport.encoded, IMAGES);
    const want = await snapshot(cleanIndex);
    assert.equal(want.ids.length, IMAGES);

    const random = seeded(SEED);
    const kills: string[] = [];
    let killedMidway = 0;
    let killedInWrite = 0;
    let compactionKilled = false;
    const covered = () => killedMidway >= 4 && killedInWrite >= 2 && compactionKilled;
    // where a kill lands races the child (a poll, a file event): when a build completes before
    // every kind of kill has happened, another build starts from nothing (three at most)
    let index = '';
    for (let build = 0; build < 3 && (build === 0 || !covered()); build++) {
      index = join(dir, `killed-${build}.duo`);
      kills.push(`build ${build}:`);
      for (let run = 0; run < 30 && committedRows(index) < IMAGES; run++) {
        const before = committedRows(index);
        // even runs: once the next 1–6 checkpoints are committed, 0–30 ms later (mostly while encoding);
        // odd runs: at the 1st–12th file event of a checkpoint or compaction (mid-write)
        // and once 11 or more segments are there, the next odd run is killed inside the compaction
        const segments = committedNames(index).length >> 1;
        const compacting = !compactionKilled && segments >= 11;
        const at: KillPoint =
          run % 2 === 0
            ? { after: { rows: before + 2 * (1 + Math.floor(random() * 6)), delayMs: Math.floor(random() * 30) } }
            : { write: compacting ? { nth: 1 + Math.floor(random() * 4), minSegments: 17 } : { nth: 1 + Math.floor(random() * 12) } };
        const r = await runAndKill(indexArgs(photos, index), index, at);
        assert.notEqual(r.code, 75, `run ${run}: the killed writer's lock was not taken over: ${r.stderr}`);
        const how = 'after' in at ? `${at.after.delayMs} ms after ${at.after.rows} rows` : `at ${at.write.minSegments ? 'compaction ' : ''}file event ${at.write.nth} (${r.event ?? 'none'})`;
        if (!r.killed) {
          assert.equal(r.code, 0, `run ${run} ended by itself with ${r.code}: ${r.stderr}`);
          kills.push(`run ${run}: finished before its kill point (${how})`);
          break;
        }
        const after = committedRows(index);
        const strays = strayFiles(index).filter((f) => !f.startsWith('write.lock'));
        if (strays.length > 0) killedInWrite++;
        // 17 segments committed: the writer was compacting them when it left a partial file
        const inCompaction = strays.length > 0 && committedNames(index).length >> 1 >= 17;
        if (inCompaction) compactionKilled = true;
        kills.push(`run ${run}: killed ${how}; ${before} → ${after} rows committed in ${committedNames(index).length >> 1} segments; left ${strays.join(', ') || 'no partial files'}${inCompaction ? ' (inside a compaction)' : ''}`);
        if (after > 0 && after < IMAGES) {
          killedMidway++;
          // what a reader sees after the kill: the last commit, every row as the clean run wrote it
          const seen = await snapshot(index);
          assert.equal(seen.ids.length, after, `run ${run}: rows readable after the kill`);
          assertRowsOf(seen, want, `after kill ${run}`);
        }
      }
    }
    console.error(`seed ${SEED}:\n  ${kills.join('\n  ')}`);
    assert.ok(killedMidway >= 4, `only ${killedMidway} kills landed between the first and the last commit`);
    assert.ok(killedInWrite >= 2, `only ${killedInWrite} kills left a partly written checkpoint behind`);
    assert.ok(compactionKilled, 'no run was killed inside a compaction');

    const final = await runDuo(indexArgs(photos, index));
    assert.equal(final.code, 0, final.stderr);
    const got = await snapshot(index);
    assert.deepEqual(got.ids, want.ids);
    assertRowsOf(got, want, 'resumed index');
    // the last writer cleaned up after the killed ones, and released its lock
    assert.deepEqual(strayFiles(index), []);
    // 24 checkpoints and more than 16 segments compact: the runs went through compactions
    assert.ok(committedNames(index).length >> 1 < IMAGES / 2, `${committedNames(index).length >> 1} segments: no compaction happened`);
  });
});
