import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DuoError } from '../../src/errors.js';
import { ExactIndex } from '../../src/index/exact-index.js';
import { loadIndex, saveIndex } from '../../src/index/index-file.js';
import { randomUnit } from '../contracts/vector-store.contract.js';
import { tempDir } from '../helpers.js';

const header = (modelId = 'model@abc') => ({
  modelId,
  modelSpec: '/models/x',
  dim: 8,
  normalized: true,
  root: '/photos',
  createdAt: '2026-01-01T00:00:00.000Z',
  updatedAt: '2026-01-01T00:00:00.000Z',
  entries: [
    { id: 'a.jpg', size: 10, mtimeMs: 1 },
    { id: 'sub/b.jpg', size: 20, mtimeMs: 2, meta: { album: 'x' } },
  ],
});

async function saved(dir: string) {
  const store = new ExactIndex(8);
  store.upsert(['a.jpg', 'sub/b.jpg'], [randomUnit(8, 1), randomUnit(8, 2)]);
  const path = join(dir, 'i.duo');
  await saveIndex(path, { store, header: header() });
  return { path, store };
}

const code = (c: string, text?: RegExp) => (e: unknown) => e instanceof DuoError && e.code === c && (!text || text.test(e.message));

describe('index file', () => {
  it('round-trips vectors, ids, entries and the model id, leaving no temporary file', async () => {
    const dir = tempDir();
    const { path, store } = await saved(dir);
    const loaded = await loadIndex(path, { modelId: 'model@abc' });
    assert.equal(loaded.header.count, 2);
    assert.equal(loaded.header.formatVersion, 1);
    assert.deepEqual(loaded.store.ids(), ['a.jpg', 'sub/b.jpg']);
    assert.deepEqual(Array.from(loaded.store.get('sub/b.jpg')!), Array.from(store.get('sub/b.jpg')!));
    assert.deepEqual(loaded.header.entries[1]!.meta, { album: 'x' });
    assert.deepEqual(readdirSync(dir), ['i.duo']);
  });

  it('refuses to open with another model', async () => {
    const { path } = await saved(tempDir());
    await assert.rejects(loadIndex(path, { modelId: 'other@123' }), code('INDEX_MODEL_MISMATCH', /model@abc.*other@123/));
  });

  it('detects a flipped byte, a truncation and a foreign file', async () => {
    const dir = tempDir();
    const { path } = await saved(dir);
    const bytes = readFileSync(path);
    const flipped = Buffer.from(bytes);
    flipped[flipped.length - 3]! ^= 0xff;
    writeFileSync(join(dir, 'flipped.duo'), flipped);
    await assert.rejects(loadIndex(join(dir, 'flipped.duo')), code('INDEX_CORRUPT', /checksum/));
    writeFileSync(join(dir, 'short.duo'), bytes.subarray(0, bytes.length - 4));
    await assert.rejects(loadIndex(join(dir, 'short.duo')), code('INDEX_CORRUPT', /bytes of vectors/));
    writeFileSync(join(dir, 'foreign.duo'), 'hello world, not an index');
    await assert.rejects(loadIndex(join(dir, 'foreign.duo')), code('INDEX_CORRUPT', /not a duo index/));
    await assert.rejects(loadIndex(join(dir, 'missing.duo')), code('FILE_NOT_FOUND', /missing\.duo/));
  });
});
