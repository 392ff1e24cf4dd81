import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { NpyReader, npyHeader } from '../../src/data/npy.js';
import { DuoError } from '../../src/errors.js';
import { embedShard, inShard, parseShard } from '../../src/index/embed-shard.js';
import { ExactStore } from '../../src/index/exact-store.js';
import { embedOutput, importVectors } from '../../src/index/import-vectors.js';
import type { Encoder } from '../../src/models/encoder.js';
import { fixtureModelPath, loadEncoder } from '../../src/models/load-encoder.js';
import { COLOURS, tempDir, wrapEncoder, writeColourImage } from '../helpers.js';

describe('duo embed shards and duo import', () => {
  const root = join(tempDir(), 'photos');
  const names = Object.keys(COLOURS);
  let encoder: Encoder;
  let encoded = 0;
  let counting: Encoder;
  before(async () => {
    mkdirSync(root);
    await Promise.all(names.map((n) => writeColourImage(join(root, `${n}.jpg`), COLOURS[n]!)));
    encoder = await loadEncoder(fixtureModelPath());
    // the fixture encoder, counting the images that reach it
    counting = wrapEncoder(encoder, {
      encodeImages: (i, o) => {
        encoded += i.length;
        return encoder.encodeImages(i, o);
      },
    });
  });
  after(() => encoder.dispose());

  it('writes a .npy numpy reads the same way: version 1.0 header, 64-byte aligned data', async () => {
    const head = npyHeader(2, 3);
    assert.equal(head.length % 64, 0);
    assert.equal(head.subarray(10).toString('latin1').trimEnd(), "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }");
    const path = join(tempDir(), 'x.npy');
    writeFileSync(path, Buffer.concat([head, Buffer.from(Float32Array.from([1, 2, 3, 4, 5, 6]).buffer)]));
    const r = await NpyReader.open(path);
    assert.deepEqual([r.rows, r.dim], [2, 3]);
    assert.deepEqual(Array.from(await r.read(1, 5)), [4, 5, 6]);
    await r.close();
    writeFileSync(path, Buffer.concat([npyHeader(3, 3), Buffer.alloc(8)]));
    await assert.rejects(NpyReader.open(path), /needs 36 bytes of data, found 8/);
  });

  it('splits a folder into disjoint shards, resumes without re-encoding, and imports them into one index', async () => {
    const out = join(tempDir(), 'emb');
    assert.throws(() => parseShard('3/2'), /--shard/);
    const shards = [parseShard('1/2'), parseShard('2/2')];
    const made = [];
    for (const shard of shards) made.push(await embedShard({ root, out, encoder: counting, modelSpec: fixtureModelPath(), shard }));
    assert.equal(made[0]!.rows + made[1]!.rows, names.length);
    assert.equal(encoded, names.length);
    for (const n of names) assert.equal(shards.filter((s) => inShard(`${n}.jpg`, s)).length, 1, `${n} is in exactly one shard`);
    const again = await embedShard({ root, out, encoder: counting, modelSpec: fixtureModelPath(), shard: shards[0] });
    assert.equal(again.encoded, 0, 'a rerun encodes nothing');
    assert.equal(encoded, names.length);
    assert.equal(readFileSync(join(out, `${made[0]!.name}.ids.txt`), 'utf8').trim().split('\n').length, made[0]!.rows);

    const found = await embedOutput(out);
    assert.equal(found.length, 2);
    const store = await ExactStore.open(join(tempDir(), 'imported.duo'), { write: true, create: { items: 'images', modelId: encoder.id, modelSpec: 'x', dim: encoder.dim, root } });
    for (const s of found) await importVectors(store, s.files);
    assert.equal(await store.count(), names.length);
    const [q] = await encoder.encodeTexts(['green']);
    assert.equal((await store.search([q!], 1))[0]![0]!.id, 'green.jpg');
    assert.equal(typeof (await store.get(['red.jpg']))[0]!.metadata.bytes, 'number', 'metadata came along');
    await store.close();
  });

  it("refuses vectors of another dimension, naming the file and the model", async () => {
    const path = join(tempDir(), 'v.npy');
    writeFileSync(path, Buffer.concat([npyHeader(1, 5), Buffer.alloc(20)]));
    const ids = join(tempDir(), 'v.txt');
    writeFileSync(ids, 'a\n');
    const store = ExactStore.memory({ items: 'images', modelId: 'm@1', modelSpec: 'm', dim: 8, root: '/' });
    await assert.rejects(importVectors(store, { vectors: path, ids }), (e: unknown) => e instanceof DuoError && e.code === 'INDEX_DIM_MISMATCH' && /v\.npy \(for model m@1\).*expected vectors of dimension 8, got 5/.test((e as Error).message));
  });
});
