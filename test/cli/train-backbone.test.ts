/** duo train --backbone and duo train-cross --global are checked before any feature is extracted: a missing file, or one without the branch the flag reads. */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { main } from '../../src/cli/main.js';
import { tinyBackbone } from '../fixtures/tiny-backbone.js';
import { tempDir } from '../helpers.js';

async function duo(args: string[]): Promise<{ code: number; stderr: string }> {
  const err: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((s: string | Uint8Array) => err.push(String(s)) > 0) as typeof process.stderr.write;
  try {
    return { code: await main(args), stderr: err.join('') };
  } finally {
    process.stderr.write = write;
  }
}

describe('duo train --backbone', () => {
  // no dataset: the backbone is refused before the data is read
  const base = ['train', '--data', join(tempDir(), 'no-data'), '--runs', tempDir(), '--run', 'r'];

  it('a missing file is refused naming the flag', async () => {
    const missing = join(tempDir(), 'nope.onnx');
    const r = await duo([...base, '--backbone', missing]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--backbone/);
    assert.match(r.stderr, /nope\.onnx/);
  });

  it('a backbone without MobileNetV2 is refused for mobilenet features, naming both flags', async () => {
    const file = join(tempDir(), 'centernet-only.onnx');
    writeFileSync(file, tinyBackbone(false));
    const r = await duo([...base, '--backbone', file, '--features', 'pooled+mobilenet']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--backbone.*no MobileNetV2 branch.*--features pooled\+mobilenet/);
  });
});

describe('duo train-cross --global', () => {
  const base = ['train-cross', '--data', join(tempDir(), 'no-data'), '--runs', tempDir(), '--run', 'r'];

  it('an unknown kind is refused naming the flag and the kinds', async () => {
    const r = await duo([...base, '--global', 'inception']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--global: unknown global input "inception" \(pooled, pooled\+mobilenet\)/);
  });

  it('--resume with another setting than the run is refused naming the flag as typed', async () => {
    const runs = tempDir();
    mkdirSync(join(runs, 'r'));
    writeFileSync(join(runs, 'r', 'params.json'), JSON.stringify({ hyper: { initGlove: false, pairMinCount: 0 } }));
    const resume = ['train-cross', '--data', join(tempDir(), 'no-data'), '--runs', runs, '--run', 'r', '--resume'];
    const glove = await duo([...resume, '--pairs', '0', '--init-glove']);
    assert.equal(glove.code, 2, glove.stderr);
    assert.match(glove.stderr, /--init-glove: is true but the run being resumed used false/);
    const pairs = await duo([...resume, '--pairs', '10']);
    assert.equal(pairs.code, 2, pairs.stderr);
    assert.match(pairs.stderr, /--pairs: is 10 but the run being resumed used 0/);
  });

  it('MobileNetV2 global regions on a pack whose backbone has no MobileNetV2 are refused before any data is read', async () => {
    const pack = join(tempDir(), 'pack');
    mkdirSync(pack);
    writeFileSync(join(pack, 'backbone.onnx'), tinyBackbone(false));
    const r = await duo([...base, '--pack', pack, '--global', 'pooled+mobilenet']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--global: pooled\+mobilenet needs a pack whose backbone has MobileNetV2/);
  });
});
