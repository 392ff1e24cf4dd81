import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DuoError } from '../../src/errors.js';
import { ExactStore } from '../../src/index/exact-store.js';
import type { VectorStore } from '../../src/index/vector-store.js';
import { contractInfo, randomUnit, runVectorStoreContract } from '../contracts/vector-store.contract.js';
import { tempDir } from '../helpers.js';

const code = (c: string) => (e: unknown) => e instanceof DuoError && e.code === c;
const dir = tempDir();
let n = 0;
const fresh = () => join(dir, `store-${++n}.duo`);

runVectorStoreContract('ExactStore in memory, JavaScript scan', { make: async (info) => ExactStore.memory(info, { scan: 'js' }) });
runVectorStoreContract('ExactStore in memory, onnxruntime Gemm+TopK scan', { make: async (info) => ExactStore.memory(info, { scan: 'ort' }) });
runVectorStoreContract('ExactStore on disk', {
  make: (info) => ExactStore.open(fresh(), { write: true, create: info }),
  reopen: async (store: VectorStore) => {
    await store.close();
    return ExactStore.open(store.location);
  },
});

const item = (i: number) => ({ id: `img-${i}`, vector: randomUnit(8, i + 1), metadata: { n: i } });
const files = (path: string) => readdirSync(path).filter((f) => /\.(seg|stage2)$/.test(f)).sort();

describe('ExactStore files', () => {
  it('appends one segment per flush, never rewriting the earlier ones, and compacts when they pile up', async () => {
    const path = fresh();
    const store = await ExactStore.open(path, { write: true, create: contractInfo(8), compaction: { maxSegments: 3, maxDeadShare: 0.9 } });
    await store.upsert([item(0), item(1)]);
    await store.flush();
    const first = readFileSync(join(path, '000001.seg'));
    await store.upsert([item(2)]);
    await store.flush();
    await store.flush(); // nothing pending: no segment
    assert.deepEqual(files(path), ['000001.seg', '000002.seg']);
    assert.deepEqual(readFileSync(join(path, '000001.seg')), first, 'an append leaves earlier segments untouched');
    await store.remove(['img-0']);
    await store.flush();
    await store.upsert([item(3)]);
    await store.flush(); // a fourth segment: over maxSegments, so everything is compacted into one
    assert.deepEqual(files(path), ['000005.seg']);
    assert.equal(store.segments, 1);
    await store.close();
    const again = await ExactStore.open(path);
    assert.deepEqual((await again.get(['img-0', 'img-1', 'img-3'])).map((x) => x?.metadata.n), [undefined, 1, 3]);
    await again.close();
  });

  it('compacts when a quarter of the stored rows are dead, keeping stage-2 rows with their items', async () => {
    const path = fresh();
    const info = contractInfo(8, { reranker: { id: 'x', spec: '/x', regionSize: 3 } });
    const store = await ExactStore.open(path, { write: true, create: info });
    await store.upsert(Array.from({ length: 8 }, (_, i) => ({ ...item(i), regions: Float32Array.from([i, i, i]) })));
    await store.flush();
    await store.upsert([1, 2, 3].map((i) => ({ ...item(i), regions: Float32Array.from([i + 10, 0, 0]) })));
    await store.flush(); // 3 of 11 stored rows dead: 27% > 25%
    assert.deepEqual(files(path), ['000003.seg', '000003.stage2']);
    assert.deepEqual((await store.regions(['img-2', 'img-5'])).map((r) => Array.from(r!)), [[12, 0, 0], [5, 5, 5]]);
    await store.close();
  });

  it('keeps the changes made while a flush is writing, and a rejected batch changes nothing', async () => {
    const path = fresh();
    const store = await ExactStore.open(path, { write: true, create: contractInfo(8) });
    await store.upsert([item(0), item(5)]);
    const flushing = store.flush();
    await new Promise((r) => setImmediate(r)); // the flush has taken its batch and is writing
    await store.upsert([item(1)]);
    await store.remove(['img-0']);
    await flushing;
    await assert.rejects(store.upsert([item(2), { id: 'bad', vector: new Float32Array(8).fill(NaN) }]), /bad/);
    assert.deepEqual((await store.get(['img-2'])).map((x) => x?.id), [undefined], 'the good item of a rejected batch is not stored');
    assert.equal(await store.count(), 2);
    await store.close();
    const again = await ExactStore.open(path);
    const ids: string[] = [];
    for await (const { id } of again.list()) ids.push(id);
    assert.deepEqual(ids.sort(), ['img-1', 'img-5']);
    await again.close();
  });

  it('locks out a second writer, and lets readers in', async () => {
    const path = fresh();
    const writer = await ExactStore.open(path, { write: true, create: contractInfo(8) });
    await assert.rejects(ExactStore.open(path, { write: true }), code('INDEX_LOCKED'));
    const reader = await ExactStore.open(path);
    assert.equal(await reader.count(), 0);
    await reader.close();
    await writer.close();
    const next = await ExactStore.open(path, { write: true });
    await next.close();
  });

  it("takes over the lock of a writer that was killed, and only then", async () => {
    const path = fresh();
    const writer = await ExactStore.open(path, { write: true, create: contractInfo(8) });
    const owner = JSON.parse(readFileSync(join(path, 'write.lock.owner'), 'utf8')) as { pid: number; host: string };
    assert.equal(owner.pid, process.pid);
    // the lock held by a live process (the test runner that started this one) is refused
    writeFileSync(join(path, 'write.lock.owner'), JSON.stringify({ ...owner, pid: process.ppid }));
    await assert.rejects(ExactStore.open(path, { write: true }), code('INDEX_LOCKED'));
    // by a process that no longer exists (as after SIGKILL: the lock is still fresh) it is taken over at once
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
    writeFileSync(join(path, 'write.lock.owner'), JSON.stringify({ ...owner, pid: Number(dead.stdout.toString()) }));
    const next = await ExactStore.open(path, { write: true });
    assert.equal(JSON.parse(readFileSync(join(path, 'write.lock.owner'), 'utf8')).pid, process.pid);
    await next.close();
    assert.deepEqual(readdirSync(path).filter((f) => f.startsWith('write.lock')), [], 'a closed writer leaves no lock behind');
    // the first writer lost its lock: it must not commit over the new one's work, and says why
    await writer.upsert([item(0)]);
    await assert.rejects(writer.flush(), /lost its lock: write.lock.owner names another process/);
    await assert.rejects(writer.close(), code('INDEX_LOCKED'));
    const after = await ExactStore.open(path);
    assert.equal(await after.count(), 0);
    await after.close();
  });

  it('deletes the files of a writer that died before committing them', async () => {
    const path = fresh();
    const store = await ExactStore.open(path, { write: true, create: contractInfo(8) });
    await store.upsert([item(0)]);
    await store.close();
    writeFileSync(join(path, '000009.seg'), 'half-written');
    writeFileSync(join(path, '.000009.seg.123.tmp'), 'half-written');
    writeFileSync(join(path, '000001.seg.3fa9c2'), 'write-file-atomic temporary');
    writeFileSync(join(path, 'manifest.json.77b0e1'), 'write-file-atomic temporary');
    const reader = await ExactStore.open(path);
    assert.equal(readdirSync(path).includes('000009.seg'), true, 'a reader changes nothing');
    await reader.close();
    const writer = await ExactStore.open(path, { write: true });
    assert.deepEqual(readdirSync(path).filter((f) => !f.startsWith('write.lock')).sort(), ['000001.seg', 'manifest.json']);
    assert.equal(await writer.count(), 1);
    await writer.close();
  });

  it('refuses a damaged segment, a format-1 file and a folder without a manifest, by name', async () => {
    const path = fresh();
    const store = await ExactStore.open(path, { write: true, create: contractInfo(8) });
    await store.upsert([item(0), item(1)]);
    await store.close();
    const seg = join(path, '000001.seg');
    const bytes = readFileSync(seg);
    bytes[bytes.length - 3]! ^= 0xff;
    writeFileSync(seg, bytes);
    await assert.rejects(ExactStore.open(path), (e: unknown) => code('INDEX_CORRUPT')(e) && /000001\.seg.*checksum/.test((e as Error).message));
    writeFileSync(seg, bytes.subarray(0, bytes.length - 8));
    await assert.rejects(ExactStore.open(path), /000001\.seg.*expected 64 bytes/);
    const old = join(dir, 'old.duo');
    writeFileSync(old, Buffer.concat([Buffer.from('DUOINDEX'), Buffer.alloc(40)]));
    await assert.rejects(ExactStore.open(old), (e: unknown) => code('INDEX_FORMAT')(e) && /format-1/.test((e as Error).message));
    await assert.rejects(ExactStore.open(dir), code('INDEX_CORRUPT'));
    await assert.rejects(ExactStore.open(join(dir, 'none.duo')), code('FILE_NOT_FOUND'));
  });

  it('requires every item of an index with stage-2 sides to bring its rows', async () => {
    const store = ExactStore.memory(contractInfo(8, { reranker: { id: 'x', spec: '/x', regionSize: 3 } }));
    await assert.rejects(store.upsert([item(0)]), /stage-2 regions of img-0/);
    await assert.rejects(store.upsert([{ ...item(0), regions: new Float32Array(2) }]), /expected vectors of dimension 3, got 2/);
  });
});
