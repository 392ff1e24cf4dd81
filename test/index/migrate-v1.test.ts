import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DuoError } from '../../src/errors.js';
import { ExactStore } from '../../src/index/exact-store.js';
import { migrateV1 } from '../../src/index/migrate-v1.js';
import { toHalf } from '../../src/util/float16.js';
import { randomUnit } from '../contracts/vector-store.contract.js';
import { tempDir } from '../helpers.js';

/** duo-search 0.1's layout: "MAGIC" | u32 version | u32 header bytes | header JSON | pad | rows. */
function v1File(magic: string, header: object, rows: Uint8Array, align: number): Buffer {
  const json = Buffer.from(JSON.stringify(header));
  const prefix = Buffer.alloc(16);
  prefix.write(magic, 'latin1');
  prefix.writeUInt32LE(1, 8);
  prefix.writeUInt32LE(json.length, 12);
  return Buffer.concat([prefix, json, Buffer.alloc((align - ((16 + json.length) % align)) % align), rows]);
}

describe('migrating a format-1 index', () => {
  const dir = tempDir();
  const entries = ['a.jpg', 'sub/b.jpg', 'c.jpg'].map((id, i) => ({ id, size: 100 + i, mtimeMs: 1_700_000_000_000 + i }));
  const vectors = entries.map((_, i) => randomUnit(8, i + 3));
  const rows = new Uint8Array(Float32Array.from(vectors.flatMap((v) => [...v])).buffer);
  const header = { formatVersion: 1, modelId: 'm@1', modelSpec: '/m', dim: 8, count: 3, normalized: true, root: '/photos', checksum: createHash('sha256').update(rows).update(JSON.stringify(entries)).digest('hex'), createdAt: '', updatedAt: '', entries };
  const old = join(dir, 'old.duo');
  writeFileSync(old, v1File('DUOINDEX', header, rows, 4));
  const regions = entries.map((_, i) => Float32Array.from([i, 0.5, -1]));
  writeFileSync(`${old}.stage2`, v1File('DUOSTG2\0', { rerankerId: 'cross@1', size: 3, ids: entries.map((e) => e.id) }, new Uint8Array(toHalf(Float32Array.from(regions.flatMap((r) => [...r]))).buffer), 2));

  it('carries vectors, ids, file sizes and dates, and the stage-2 sides over, encoding nothing', async () => {
    const target = join(dir, 'new.duo');
    assert.deepEqual(await migrateV1(old, target, { reranker: { id: 'cross@1', spec: '/cross' } }), { items: 3, stage2: true });
    const store = await ExactStore.open(target);
    assert.deepEqual(store.info, { items: 'images', modelId: 'm@1', modelSpec: '/m', dim: 8, root: '/photos', reranker: { id: 'cross@1', spec: '/cross', regionSize: 3 } });
    const [hits] = await store.search([vectors[1]!], 1);
    assert.equal(hits![0]!.id, 'sub/b.jpg');
    const [b] = await store.get(['sub/b.jpg']);
    assert.deepEqual(b!.metadata, { bytes: 101, mtimeMs: 1_700_000_000_001, modified: new Date(1_700_000_000_001).toISOString() });
    assert.deepEqual((await store.regions(['c.jpg'])).map((r) => Array.from(r!)), [[2, 0.5, -1]]);
    await store.close();
  });

  it("is refused by the store with a pointer to duo migrate, and refuses another cross-encoder's sides", async () => {
    await assert.rejects(ExactStore.open(old), (e: unknown) => e instanceof DuoError && e.code === 'INDEX_FORMAT' && /duo migrate/.test((e as Error).message));
    await assert.rejects(migrateV1(old, join(dir, 'x.duo'), { reranker: { id: 'other', spec: '/o' } }), /holds the image side of cross@1/);
    const damaged = Buffer.from(v1File('DUOINDEX', header, rows, 4));
    damaged[damaged.length - 1]! ^= 1;
    writeFileSync(join(dir, 'bad.duo'), damaged);
    await assert.rejects(migrateV1(join(dir, 'bad.duo'), join(dir, 'y.duo')), (e: unknown) => e instanceof DuoError && e.code === 'INDEX_CORRUPT');
  });
});
