import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { annAutoMinItems, DEFAULT_HNSW, EXACT, needsRebuild, resolveAnn, storeOptionsFor } from '../../src/index/ann.js';

const recordedI8 = { ...DEFAULT_HNSW, quantization: 'i8' as const, connectivity: 12, expansionSearch: 40 };

describe('--ann', () => {
  it('a new index: auto picks HNSW from the threshold on, on and off force it, no request stays exact', () => {
    assert.deepEqual(resolveAnn(storeOptionsFor(annAutoMinItems(256) - 1).ann, undefined, 0, 256), EXACT);
    assert.deepEqual(resolveAnn(storeOptionsFor(annAutoMinItems(256)).ann, undefined, 0, 256), DEFAULT_HNSW);
    assert.deepEqual(resolveAnn(storeOptionsFor(10, { ann: 'on', annQuantization: 'f16', annConnectivity: 8, annExpansion: 200 }).ann, undefined, 0, 256), { ...DEFAULT_HNSW, quantization: 'f16', connectivity: 8, expansionSearch: 200 });
    assert.deepEqual(resolveAnn(storeOptionsFor(10 ** 7, { ann: 'off' }).ann, undefined, 0, 256), EXACT);
    assert.deepEqual(resolveAnn(undefined, undefined, 0, 256), EXACT);
    assert.deepEqual(resolveAnn(storeOptionsFor(annAutoMinItems(256) / 2).ann, undefined, 0, 512), DEFAULT_HNSW, 'the threshold is in items × dimension');
  });

  it('an existing index keeps what it recorded unless --ann asks otherwise', () => {
    assert.deepEqual(resolveAnn(storeOptionsFor(10 ** 7).ann, EXACT, 5, 256), EXACT, 'no --ann: an exact index stays exact, however large');
    assert.deepEqual(resolveAnn(storeOptionsFor(1).ann, recordedI8, 5, 256), recordedI8);
    assert.deepEqual(resolveAnn(storeOptionsFor(1, { annExpansion: 64 }).ann, recordedI8, 5, 256), { ...recordedI8, expansionSearch: 64 });
    assert.deepEqual(resolveAnn(storeOptionsFor(1, { ann: 'auto' }).ann, EXACT, annAutoMinItems(256), 256), DEFAULT_HNSW, 'explicit auto counts what the index holds');
    assert.deepEqual(resolveAnn(storeOptionsFor(1, { ann: 'off' }).ann, recordedI8, 5, 256), EXACT);
    assert.deepEqual(resolveAnn(storeOptionsFor(1, { ann: 'on' }).ann, recordedI8, 5, 256), recordedI8, 'on keeps the recorded settings');
  });

  it('refuses flags that contradict each other or the index', () => {
    assert.throws(() => resolveAnn(storeOptionsFor(1, { ann: 'off', annQuantization: 'i8' }).ann, undefined, 0, 256), /--ann off/);
    assert.throws(() => resolveAnn(storeOptionsFor(1, { annConnectivity: 8 }).ann, EXACT, 5, 256), /--ann on/);
  });

  it('only quantization and connectivity need a new graph', () => {
    assert.equal(needsRebuild(recordedI8, { ...recordedI8, expansionSearch: 999, expansionAdd: 7 }), false);
    assert.equal(needsRebuild(recordedI8, { ...recordedI8, quantization: 'f32' }), true);
    assert.equal(needsRebuild(recordedI8, EXACT), true);
  });
});
