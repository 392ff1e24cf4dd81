import assert from 'node:assert/strict';
import { mkdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DuoError } from '../../src/errors.js';
import { buildIndex } from '../../src/index/build-index.js';
import { ExactStore } from '../../src/index/exact-store.js';
import type { Encoder } from '../../src/models/encoder.js';
import { fixtureModelPath, loadEncoder } from '../../src/models/load-encoder.js';
import { COLOURS, tempDir, writeColourImage } from '../helpers.js';

/** What an index folder holds: its ids, sorted, and the open store's count. */
async function held(indexPath: string): Promise<string[]> {
  const store = await ExactStore.open(indexPath);
  const ids: string[] = [];
  for await (const { id } of store.list()) ids.push(id);
  assert.equal(await store.count(), ids.length);
  await store.close();
  return ids.sort();
}

/** Wraps an encoder to count images encoded and, optionally, die after some batches. */
function counting(inner: Encoder, dieAfterBatches = Infinity) {
  let batches = 0;
  const counter = { images: 0 };
  const encoder: Encoder = {
    id: inner.id,
    dim: inner.dim,
    normalized: inner.normalized,
    similarity: inner.similarity,
    encodeTexts: (t, o) => inner.encodeTexts(t, o),
    encodeImages: async (imgs, o) => {
      if (++batches > dieAfterBatches) throw new Error('killed');
      counter.images += imgs.length;
      return inner.encodeImages(imgs, o);
    },
    dispose: async () => {},
  };
  return { encoder, counter };
}

describe('buildIndex', () => {
  let base: Encoder;
  const root = join(tempDir(), 'photos');
  before(async () => {
    base = await loadEncoder(fixtureModelPath());
    mkdirSync(join(root, 'album'), { recursive: true });
    const names = Object.keys(COLOURS);
    await Promise.all(names.map((n, i) => writeColourImage(join(root, i % 2 ? 'album' : '', `${n}.jpg`), COLOURS[n]!)));
    writeFileSync(join(root, 'broken.jpg'), 'not an image');
    writeFileSync(join(root, 'notes.txt'), 'ignored: not an image extension');
  });
  after(() => base.dispose());

  it('indexes recursively, skips bad files with a report, and reruns encode nothing', async () => {
    const indexPath = join(tempDir(), 'photos.duo');
    const first = counting(base);
    const report = await buildIndex({ root, indexPath, encoder: first.encoder, modelSpec: fixtureModelPath(), batchSize: 4 });
    assert.equal(report.total, 7);
    assert.equal(report.encoded, 6);
    assert.deepEqual(report.failed.map((f) => f.id), ['broken.jpg']);
    assert.match(report.failed[0]!.error, /broken\.jpg/);
    assert.deepEqual(await held(indexPath), ['album/black.jpg', 'album/green.jpg', 'album/yellow.jpg', 'blue.jpg', 'red.jpg', 'white.jpg']);
    const store = await ExactStore.open(indexPath);
    const [entry] = await store.get(['album/green.jpg']);
    assert.equal(entry!.metadata.bytes, statSync(join(root, 'album', 'green.jpg')).size, 'file size and dates are kept as metadata');
    assert.match(String(entry!.metadata.modified), /^\d{4}-\d{2}-\d{2}T/);
    assert.equal(store.info.modelId, base.id);
    await store.close();

    const again = counting(base);
    const second = await buildIndex({ root, indexPath, encoder: again.encoder, modelSpec: fixtureModelPath() });
    assert.equal(again.counter.images, 0, 'nothing reaches the encoder again');
    assert.equal(second.reused, 6);
    assert.deepEqual(second.failed.map((f) => f.id), ['broken.jpg'], 'the broken file is tried again and reported again');
  });

  it('re-encodes a changed file and drops a deleted one', async () => {
    const dir = tempDir();
    const photos = join(dir, 'p');
    mkdirSync(photos);
    await writeColourImage(join(photos, 'a.jpg'), COLOURS.red!);
    await writeColourImage(join(photos, 'b.jpg'), COLOURS.blue!);
    const indexPath = join(dir, 'i.duo');
    await buildIndex({ root: photos, indexPath, encoder: base, modelSpec: 'x' });
    await writeColourImage(join(photos, 'a.jpg'), COLOURS.green!, 'jpeg', 80);
    utimesSync(join(photos, 'a.jpg'), new Date(), new Date(Date.now() + 5000));
    rmSync(join(photos, 'b.jpg'));
    const c = counting(base);
    const report = await buildIndex({ root: photos, indexPath, encoder: c.encoder, modelSpec: 'x' });
    assert.equal(c.counter.images, 1);
    assert.equal(report.removed, 1);
    assert.deepEqual(await held(indexPath), ['a.jpg']);
    const store = await ExactStore.open(indexPath);
    const [green] = await base.encodeTexts(['green']);
    assert.ok((await store.search([green!], 1))[0]![0]!.score > 0.9, 'the stored vector is the new, green one');
    await store.close();
  });

  it('resumes after a kill from the last checkpoint, encoding only what is left', async () => {
    const indexPath = join(tempDir(), 'killed.duo');
    const dying = counting(base, 2);
    await assert.rejects(
      buildIndex({ root, indexPath, encoder: dying.encoder, modelSpec: 'x', batchSize: 2, checkpointEvery: 2 }),
      /killed/,
    );
    assert.equal((await held(indexPath)).length, 4, 'two checkpointed batches survive');
    const rest = counting(base);
    const report = await buildIndex({ root, indexPath, encoder: rest.encoder, modelSpec: 'x', batchSize: 2 });
    assert.equal(rest.counter.images, 2, 'the two good images left are encoded; the broken one never reaches the encoder');
    assert.equal(report.reused, 4);
    assert.equal((await held(indexPath)).length, 6);
  });

  it('locks the index for the run: a second concurrent build is refused, the first completes', async () => {
    const indexPath = join(tempDir(), 'locked.duo');
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow: Encoder = { ...counting(base).encoder, encodeImages: async (imgs, o) => (await gate, base.encodeImages(imgs, o)) };
    const first = buildIndex({ root, indexPath, encoder: slow, modelSpec: 'x' });
    await new Promise((r) => setTimeout(r, 300)); // the first run holds the lock and waits in its encoder
    await assert.rejects(buildIndex({ root, indexPath, encoder: base, modelSpec: 'x' }), (e: unknown) => e instanceof DuoError && e.code === 'INDEX_LOCKED');
    release();
    assert.equal((await first).encoded, 6);
    assert.equal((await held(indexPath)).length, 6);
  });

  it('refuses an existing index built by another model or for another folder', async () => {
    const indexPath = join(tempDir(), 'i.duo');
    await buildIndex({ root, indexPath, encoder: base, modelSpec: 'x' });
    const other = { ...counting(base).encoder, id: 'another-model@0' };
    await assert.rejects(buildIndex({ root, indexPath, encoder: other, modelSpec: 'y' }), (e: unknown) => e instanceof DuoError && e.code === 'INDEX_MODEL_MISMATCH');
    await assert.rejects(buildIndex({ root: join(root, 'album'), indexPath, encoder: base, modelSpec: 'x' }), /another --index/);
    await assert.rejects(buildIndex({ root: join(root, 'nope'), indexPath: join(tempDir(), 'n.duo'), encoder: base, modelSpec: 'x' }), (e: unknown) => e instanceof DuoError && e.code === 'FILE_NOT_FOUND');
  });
});
