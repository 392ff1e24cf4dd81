/** duo search with weighted query terms (an expression as the argument, in a --queries file, with image paths) and with --expand. */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { fixtureModelPath } from '../../src/models/load-encoder.js';
import { COLOURS, runDuo, tempDir, writeColourImage } from '../helpers.js';

describe('duo search: weighted terms, --expand', () => {
  const data = tempDir();
  const images = join(data, 'images');
  const index = join(data, 'colours.duo');
  const ids = (out: { results: { id: string }[] }) => out.results.map((h) => h.id);

  before(async () => {
    mkdirSync(images);
    await Promise.all(Object.keys(COLOURS).map((n) => writeColourImage(join(images, `${n}.jpg`), COLOURS[n]!)));
    const r = await runDuo(['index', images, '--index', index, '--model', fixtureModelPath()]);
    assert.equal(r.code, 0, r.stderr);
  });

  it('an expression argument: "yellow" - "red" ranks green first and red last, --json in the usual shape', async () => {
    const r = await runDuo(['search', '"yellow" - "red"', '--index', index, '--k', '6', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.query, '"yellow" - "red"');
    assert.equal(ids(out)[0], 'green.jpg');
    assert.equal(ids(out).at(-1), 'red.jpg');
    assert.deepEqual(Object.keys(out).sort(), ['index', 'k', 'latencyMs', 'mode', 'model', 'query', 'results']);
  });

  it('an existing image file is an image term; item:<id> an indexed item', async () => {
    const r = await runDuo(['search', `${join(images, 'yellow.jpg')} - red`, '--index', index, '--k', '6', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(ids(JSON.parse(r.stdout))[0], 'green.jpg');
    const item = await runDuo(['search', 'item:yellow.jpg - red', '--index', index, '--k', '6', '--json']);
    assert.equal(item.code, 0, item.stderr);
    const out = JSON.parse(item.stdout);
    assert.ok(!ids(out).includes('yellow.jpg'));
    assert.equal(ids(out).at(-1), 'red.jpg');
  });

  it('a plain query is unchanged, and a bad expression exits 2 naming the term', async () => {
    const plain = await runDuo(['search', 'a red thing', '--index', index, '--k', '1', '--json']);
    assert.equal(JSON.parse(plain.stdout).query, 'a red thing');
    const bad = await runDuo(['search', '"yellow" + x:red', '--index', index]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /query: term 2: weight "x" is not a number/);
    const cancel = await runDuo(['search', '"red" - "red"', '--index', index]);
    assert.equal(cancel.code, 2);
    assert.match(cancel.stderr, /terms: the weighted sum .* zero/);
  });

  it('--queries: each line may be an expression; a bad one gets its error line', async () => {
    const file = join(data, 'queries.txt');
    writeFileSync(file, 'yellow\n"yellow" - "red"\n"yellow" + x:red\n');
    const r = await runDuo(['search', '--queries', file, '--index', index, '--k', '1', '--json']);
    assert.equal(r.code, 65);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(lines[0].results[0].id, 'yellow.jpg');
    assert.equal(lines[1].results[0].id, 'green.jpg');
    assert.equal(lines[2].error.code, 'BAD_ARGUMENT');
    assert.match(lines[2].error.message, /--queries query 3: term 2: weight "x"/);
  });

  it('--expand: the package’s expansion table (red → chromatic color, redness, a photo of red) changes the scores; a bad weight exits 2', async () => {
    const plain = JSON.parse((await runDuo(['search', 'red', '--index', index, '--k', '6', '--json'])).stdout);
    const r = await runDuo(['search', 'red', '--index', index, '--k', '6', '--json', '--expand', '--expand-synonym', '1']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.deepEqual(Object.keys(out).sort(), Object.keys(plain).sort(), 'the same shape');
    assert.equal(out.results[0].id, 'red.jpg');
    assert.notEqual(out.results[0].score, plain.results[0].score);
    const bad = await runDuo(['search', 'red', '--index', index, '--expand', '--expand-synonym', '2']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--expand-synonym: Too big/);
  });
});
