import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { readManifest } from '../../src/index/manifest.js';
import { fixtureModelPath } from '../../src/models/load-encoder.js';
import { COLOURS, tempDir, writeColourImage, runDuo } from '../helpers.js';

const run = (args: string[]) => runDuo(args);

describe('duo index --ann', () => {
  const data = tempDir();
  const images = join(data, 'images');
  const index = join(data, 'colours.duo');

  before(async () => {
    mkdirSync(images);
    await Promise.all(Object.entries(COLOURS).map(([n, rgb]) => writeColourImage(join(images, `${n}.jpg`), rgb)));
  });

  it('builds an HNSW index with the settings asked, searches it, and converts it back when asked', async () => {
    const built = await run(['index', images, '--index', index, '--model', fixtureModelPath(), '--ann', 'on', '--ann-quantization', 'f16', '--ann-connectivity', '8', '--json']);
    assert.equal(built.code, 0, built.stderr);
    assert.match(JSON.parse(built.stdout).scan, /^HNSW f16, connectivity 8/);
    const m = await readManifest(index);
    assert.equal(m.ann?.quantization, 'f16');
    assert.ok(m.ann?.graph);

    const found = await run(['search', 'a red thing', '--index', index, '--k', '2', '--json']);
    assert.equal(found.code, 0, found.stderr);
    assert.equal(JSON.parse(found.stdout).results[0].id, 'red.jpg');

    const again = await run(['index', images, '--index', index, '--model', fixtureModelPath(), '--json']);
    assert.match(JSON.parse(again.stdout).scan, /^HNSW f16/, 'a rerun without --ann keeps what the index recorded');
    const exact = await run(['index', images, '--index', index, '--model', fixtureModelPath(), '--ann', 'off', '--json']);
    assert.equal(JSON.parse(exact.stdout).scan, 'exact');
    assert.equal((await readManifest(index)).ann, undefined);
  });

  it('refuses contradictory or unknown settings as usage errors', async () => {
    const off = await run(['index', images, '--index', join(data, 'x.duo'), '--model', fixtureModelPath(), '--ann', 'off', '--ann-quantization', 'i8']);
    assert.equal(off.code, 2);
    assert.match(off.stderr, /--ann off/);
    const bad = await run(['index', images, '--index', join(data, 'y.duo'), '--ann-quantization', 'i4']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /i4/);
  });
});
