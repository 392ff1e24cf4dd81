/** duo train --backbone is checked before any feature is extracted: a missing file, or one without the branch --features reads. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
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
