import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DuoError } from '../../src/errors.js';
import { buildIndex } from '../../src/index/build-index.js';
import { fixtureModelPath } from '../../src/models/load-encoder.js';
import { Predictor } from '../../src/predictor.js';
import { packageRoot } from '../../src/util/package-root.js';
import { COLOURS, tempDir, writeColourImage } from '../helpers.js';

describe('Predictor', () => {
  const root = join(tempDir(), 'photos');
  const paths = Object.keys(COLOURS).map((n) => join(root, `${n}.jpg`));
  let p: Predictor;
  before(async () => {
    mkdirSync(root);
    await Promise.all(Object.keys(COLOURS).map((n) => writeColourImage(join(root, `${n}.jpg`), COLOURS[n]!)));
    p = await Predictor.open({ model: fixtureModelPath() });
  });
  after(() => p.close());

  it('ranks a list of images for a text without writing an index', async () => {
    const ranked = await p.rankImages('something green', paths, 3);
    assert.deepEqual(ranked.map((r) => r.rank), [1, 2, 3]);
    assert.equal(ranked[0]!.image, join(root, 'green.jpg'));
    assert.ok(ranked[0]!.score > ranked[1]!.score);
    assert.equal((await p.rankImages('black', paths)).length, paths.length, 'k defaults to all');
    await assert.rejects(p.rankImages('red', [...paths, join(root, 'missing.jpg')]), (e: unknown) => e instanceof DuoError && /missing\.jpg/.test((e as Error).message));
  });

  it('searches only once a database is open', async () => {
    const fresh = await Predictor.open({ model: fixtureModelPath() });
    await assert.rejects(fresh.search('red'), /no database open/);
    await fresh.close();
  });

  it('builds a database, then searches it by text and by image; a rebuild encodes nothing', async () => {
    const indexPath = join(tempDir(), 'photos.duo');
    const report = await p.buildDatabase(root, indexPath);
    assert.equal(report.encoded, paths.length);
    const hits = await p.search('a blue picture', 2);
    assert.equal(hits.length, 2);
    assert.equal(hits[0]!.id, 'blue.jpg');
    assert.equal(hits[0]!.path, join(root, 'blue.jpg'));
    const similar = await p.searchImage(join(root, 'yellow.jpg'), 1);
    assert.equal(similar[0]!.id, 'yellow.jpg');
    const filtered = await p.search('a blue picture', 5, { where: { id: { in: ['red.jpg', 'white.jpg'] } } });
    assert.deepEqual(filtered.map((h) => h.id).sort(), ['red.jpg', 'white.jpg']);
    assert.equal((await p.buildDatabase(root, indexPath)).encoded, 0);
  });

  it("refuses an index built by another model", async () => {
    const other = await Predictor.open({ model: join(packageRoot(), 'models', 'colour-siglip') });
    const indexPath = join(tempDir(), 'siglip.duo');
    await buildIndex({ root, indexPath, encoder: other.encoder, modelSpec: 'colour-siglip' });
    await other.close();
    await assert.rejects(p.openDatabase(indexPath), (e: unknown) => e instanceof DuoError && e.code === 'INDEX_MODEL_MISMATCH');
  });
});
