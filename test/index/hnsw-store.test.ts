import assert from 'node:assert/strict';
import { cpSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { HnswSettings } from '../../src/index/ann.js';
import { FolderStore } from '../../src/index/folder-store.js';
import { readManifest } from '../../src/index/manifest.js';
import type { VectorStore } from '../../src/index/vector-store.js';
import { contractInfo, randomUnit, runVectorStoreContract } from '../contracts/vector-store.contract.js';
import { tempDir } from '../helpers.js';

const dir = tempDir();
let n = 0;
const fresh = () => join(dir, `hnsw-${++n}.duo`);
const hnsw = (quantization: HnswSettings['quantization'], extra: Partial<HnswSettings> = {}): HnswSettings => ({ kind: 'hnsw', quantization, connectivity: 16, expansionAdd: 64, expansionSearch: 64, ...extra });
const reopen = async (store: VectorStore) => {
  await store.close();
  return FolderStore.open(store.location);
};

runVectorStoreContract('HNSW store in memory, f16', { make: async (info) => FolderStore.memory(info, { ann: hnsw('f16') }), recall: 0.9 });
runVectorStoreContract('HNSW store on disk, f32', { make: (info) => FolderStore.open(fresh(), { write: true, create: info, ann: hnsw('f32') }), reopen, recall: 0.9 });
runVectorStoreContract('HNSW store on disk, i8', { make: (info) => FolderStore.open(fresh(), { write: true, create: info, ann: hnsw('i8') }), reopen, recall: 0.9 });

const dim = 32;
const item = (i: number) => ({ id: `img-${i}`, vector: randomUnit(dim, i + 1), metadata: { n: i, group: i % 10 === 0 ? 'rare' : 'common' } });
const items = (count: number, from = 0) => Array.from({ length: count }, (_, i) => item(from + i));

function bruteForce(held: { id: string; vector: Float32Array }[], q: Float32Array, k: number): string[] {
  return held
    .map(({ id, vector }) => ({ id, score: vector.reduce((s, x, j) => s + x * q[j]!, 0) }))
    .sort((a, b) => b.score - a.score)
    .slice(0, k)
    .map((h) => h.id);
}

async function recallAt10(store: VectorStore, held: { id: string; vector: Float32Array }[], queries = 20): Promise<number> {
  let found = 0;
  for (let s = 0; s < queries; s++) {
    const q = randomUnit(dim, 50_000 + s);
    const truth = new Set(bruteForce(held, q, 10));
    const [hits] = await store.search([q], 10);
    found += hits!.filter((h) => truth.has(h.id)).length;
  }
  return found / (queries * 10);
}

const graphFiles = (path: string) => readdirSync(path).filter((f) => f.endsWith('.usearch')).sort();

describe('HNSW store files', () => {
  for (const q of ['i8', 'f16'] as const) {
    it(`${q}: saved, reopened memory-mapped, the same results, exact f32 vectors back`, async () => {
      const path = fresh();
      let store = await FolderStore.open(path, { write: true, create: contractInfo(dim), ann: hnsw(q) });
      const all = items(2000);
      await store.upsert(all);
      const queries = [randomUnit(dim, 7), randomUnit(dim, 8)];
      const before = await store.search(queries, 10);
      assert.ok((await recallAt10(store, all)) >= 0.95);
      store = (await reopen(store)) as FolderStore;
      assert.deepEqual(store.scanInfo().graph && { state: store.scanInfo().graph!.state, mapped: store.scanInfo().graph!.mapped }, { state: 'current', mapped: true });
      assert.deepEqual(store.scanInfo().settings, hnsw(q));
      assert.deepEqual(await store.search(queries, 10), before);
      const [got] = await store.get(['img-1234']);
      assert.deepEqual(Array.from(got!.vector), Array.from(all[1234]!.vector).map((x) => Math.fround(x)), 'get reads the f32 row, not the quantised one');
      const m = await readManifest(path);
      assert.equal(m.ann?.quantization, q);
      assert.deepEqual(graphFiles(path), [m.ann!.graph!.file]);
      await store.close();
    });
  }

  it('a writer serves from the mapped graph until its first change, then loads it', async () => {
    const path = fresh();
    let store = await FolderStore.open(path, { write: true, create: contractInfo(dim), ann: hnsw('f32') });
    await store.upsert(items(300));
    await store.close();
    store = await FolderStore.open(path, { write: true });
    assert.equal(store.scanInfo().graph!.mapped, true);
    await store.upsert([item(300)]);
    assert.equal(store.scanInfo().graph!.mapped, false);
    assert.equal((await store.search([item(300).vector], 1))[0]![0]!.id, 'img-300');
    await store.close();
    const again = await FolderStore.open(path);
    assert.equal(await again.count(), 301);
    assert.equal((await again.search([item(300).vector], 1))[0]![0]!.id, 'img-300');
    await again.close();
  });

  it('removed and replaced items leave the graph, before and after reopening', async () => {
    const path = fresh();
    let store = await FolderStore.open(path, { write: true, create: contractInfo(dim), ann: hnsw('i8') });
    await store.upsert(items(500));
    await store.flush();
    const gone = Array.from({ length: 100 }, (_, i) => `img-${i * 5}`);
    assert.equal(await store.remove(gone), 100);
    await store.upsert([{ ...item(1), vector: item(900).vector }]);
    const check = async (s: VectorStore) => {
      assert.equal(await s.count(), 400);
      for (const id of ['img-0', 'img-5', 'img-495']) {
        const [hits] = await s.search([item(Number(id.slice(4))).vector], 400);
        assert.ok(!hits!.some((h) => gone.includes(h.id)), `${id}'s neighbours include no removed item`);
      }
      assert.equal((await s.search([item(900).vector], 1))[0]![0]!.id, 'img-1', 'the replaced vector is found');
      assert.notEqual((await s.search([item(1).vector], 1))[0]![0]!.id, 'img-1', 'the old vector is gone');
    };
    await check(store);
    store = (await reopen(store)) as FolderStore;
    await check(store);
    await store.close();
  });

  it('filters: an exact scan when few rows pass, oversampling when many do, and the exact scan when oversampling finds too few', async () => {
    const store = FolderStore.memory(contractInfo(dim), { ann: hnsw('f32') });
    const all = items(3000);
    await store.upsert(all);
    const q = randomUnit(dim, 99);
    const exact = (keep: (i: number) => boolean, k: number) => bruteForce(all.filter((_, i) => keep(i)), q, k);
    const plans = () => store.scanInfo().graph!.plans;

    const [few] = await store.search([q], 10, { filter: { n: { lt: 40 } } });
    assert.deepEqual(few!.map((h) => h.id), exact((i) => i < 40, 10));
    assert.equal(plans().exact, 1);

    const [many] = await store.search([q], 10, { filter: { group: 'common' } });
    assert.equal(plans().oversampled, 1);
    const truth = new Set(exact((i) => i % 10 !== 0, 10));
    assert.ok(many!.every((h) => Number(h.id.slice(4)) % 10 !== 0));
    assert.ok(many!.filter((h) => truth.has(h.id)).length >= 9);

    // 20% of the items pass, but none of those near the query: the oversampled candidates hold too few
    const near = new Set(bruteForce(all, q, 600).map((id) => Number(id.slice(4))));
    await store.upsert(all.map((it, i) => ({ ...it, metadata: { ...it.metadata, far: !near.has(i) && i % 4 === 0 } })));
    const [far] = await store.search([q], 10, { filter: { far: true } });
    assert.equal(plans().fallback, 1);
    assert.deepEqual(far!.map((h) => h.id), exact((i) => !near.has(i) && i % 4 === 0, 10));
    await store.close();
  });

  it('a graph older than the segments (the writer was killed) is brought up to date on open', async () => {
    const path = fresh();
    const store = await FolderStore.open(path, { write: true, create: contractInfo(dim), ann: hnsw('f32') });
    await store.upsert(items(1000));
    await store.flush(); // the first graph
    const first = (await readManifest(path)).ann!.graph!;
    await store.upsert(items(100, 1000));
    await store.remove(['img-3', 'img-4']);
    await store.flush(); // 102 changes of 1098: a segment, no new graph
    assert.deepEqual((await readManifest(path)).ann!.graph, first);
    const killed = fresh();
    cpSync(path, killed, { recursive: true, filter: (f) => !f.endsWith('write.lock') }); // what a kill leaves
    await store.close();

    const reader = await FolderStore.open(killed);
    assert.equal(reader.scanInfo().graph!.state, 'updated');
    assert.equal(await reader.count(), 1098);
    assert.equal((await reader.search([item(1050).vector], 1))[0]![0]!.id, 'img-1050');
    assert.ok(!(await reader.search([item(3).vector], 50))[0]!.some((h) => h.id === 'img-3'));
    await reader.close();
    const writer = await FolderStore.open(killed, { write: true });
    await writer.close(); // saves the graph it brought up to date
    const m = await readManifest(killed);
    assert.notEqual(m.ann!.graph!.file, first.file);
    assert.deepEqual(graphFiles(killed), [m.ann!.graph!.file]);
    const current = await FolderStore.open(killed);
    assert.equal(current.scanInfo().graph!.state, 'current');
    await current.close();
  });

  it('a missing or damaged graph is rebuilt from the segments; an uncommitted one is deleted', async () => {
    const path = fresh();
    const store = await FolderStore.open(path, { write: true, create: contractInfo(dim), ann: hnsw('i8') });
    const all = items(800);
    await store.upsert(all);
    await store.close();
    const file = join(path, (await readManifest(path)).ann!.graph!.file);

    truncateSync(file, 1000);
    let reader = await FolderStore.open(path);
    assert.equal(reader.scanInfo().graph!.state, 'rebuilt');
    assert.match(reader.scanInfo().graph!.problem!, /bytes/);
    assert.ok((await recallAt10(reader, all)) >= 0.95);
    await reader.close();

    rmSync(file);
    reader = await FolderStore.open(path);
    assert.equal(reader.scanInfo().graph!.state, 'rebuilt');
    assert.ok((await recallAt10(reader, all)) >= 0.95);
    await reader.close();

    writeFileSync(join(path, 'graph-000099.usearch'), 'left by a killed writer');
    const writer = await FolderStore.open(path, { write: true });
    await writer.close();
    const m = await readManifest(path);
    assert.deepEqual(graphFiles(path), [m.ann!.graph!.file], 'the rebuilt graph is saved, the uncommitted one deleted');
    reader = await FolderStore.open(path);
    assert.equal(reader.scanInfo().graph!.state, 'current');
    await reader.close();
  });

  it('compaction keeps the graph keys and the graph current', async () => {
    const path = fresh();
    const store = await FolderStore.open(path, { write: true, create: contractInfo(dim), ann: hnsw('f32'), compaction: { maxSegments: 2, maxDeadShare: 0.9 } });
    for (let b = 0; b < 3; b++) {
      await store.upsert(items(200, b * 200));
      await store.flush();
    }
    assert.equal(store.segments, 1);
    await store.close();
    const reader = await FolderStore.open(path);
    assert.equal(reader.scanInfo().graph!.state, 'current');
    assert.equal((await reader.search([item(450).vector], 1))[0]![0]!.id, 'img-450');
    await reader.close();
  });

  it('converts an exact index to HNSW and back when a writer asks, keeping every item', async () => {
    const path = fresh();
    let store = await FolderStore.open(path, { write: true, create: contractInfo(dim) });
    await store.upsert(items(400));
    await store.close();
    assert.equal((await readManifest(path)).ann, undefined);

    store = await FolderStore.open(path, { write: true, ann: { ann: 'on', annQuantization: 'f16', count: 0 } });
    await store.close();
    let m = await readManifest(path);
    assert.equal(m.ann?.quantization, 'f16');
    assert.equal(m.segments.length, 1, 'rewritten with graph keys');
    assert.ok(JSON.parse(readFileSync(join(path, `${m.segments[0]!.name}.seg`)).subarray(16, 16 + readFileSync(join(path, `${m.segments[0]!.name}.seg`)).readUInt32LE(12)).toString()).items.every((i: { key?: number }) => Number.isInteger(i.key)));
    let reader = await FolderStore.open(path);
    assert.equal(reader.scanInfo().graph!.state, 'current');
    assert.equal((await reader.search([item(123).vector], 1))[0]![0]!.id, 'img-123');
    await reader.close();

    store = await FolderStore.open(path, { write: true, ann: { annConnectivity: 8, count: 0 } });
    assert.equal(store.scanInfo().graph!.state, 'rebuilt', 'a new connectivity builds the graph again');
    await store.close();
    m = await readManifest(path);
    assert.equal(m.ann?.connectivity, 8);
    assert.deepEqual(graphFiles(path), [m.ann!.graph!.file]);

    store = await FolderStore.open(path, { write: true, ann: { ann: 'off', count: 0 } });
    await store.close();
    assert.equal((await readManifest(path)).ann, undefined);
    assert.deepEqual(graphFiles(path), []);
    reader = await FolderStore.open(path);
    assert.deepEqual(reader.scanInfo(), { settings: { kind: 'exact' }, graph: undefined });
    assert.equal(await reader.count(), 400);
    await reader.close();
  });

  it('a reader may search with another expansion; it records nothing', async () => {
    const path = fresh();
    const store = await FolderStore.open(path, { write: true, create: contractInfo(dim), ann: hnsw('f32') });
    await store.upsert(items(300));
    await store.close();
    const reader = await FolderStore.open(path, { ann: { annExpansion: 300, ann: 'off', count: 0 } });
    assert.equal(reader.ann.kind === 'hnsw' && reader.ann.expansionSearch, 300);
    await reader.close();
    assert.equal((await readManifest(path)).ann?.expansionSearch, 64);
  });
});
