import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadCheckpoint, saveCheckpoint } from '../../src/train/checkpoint.js';
import { asStored, loadTensors, saveTensors } from '../../src/models/tensor-file.js';
import { tempDir } from '../helpers.js';

describe('tensor files', () => {
  const rows = Float32Array.from({ length: 3 * 5 }, (_, i) => Math.sin(i) * (1 + Math.floor(i / 5) * 10)); // rows of very different scale
  const odd = Float32Array.from([0.1, -2.5, 3.14159]); // f16 of 3 values needs padding
  const exact = Float32Array.from([1e-7, 123456.789]);

  it('round-trips float32, float16 and int8 rows side by side, and reads back what asStored predicts', async () => {
    const path = join(tempDir(), 't.bin');
    const storage = (name: string) => (name === 'rows' ? { q8: 5 } : name === 'odd' ? ('f16' as const) : ('f32' as const));
    await saveTensors(path, new Map([['odd', odd], ['rows', rows], ['exact', exact]]), storage);
    const back = await loadTensors(path);
    assert.deepEqual([...back.keys()], ['odd', 'rows', 'exact']);
    assert.deepEqual(back.get('exact'), exact);
    assert.deepEqual(back.get('odd'), asStored(odd, 'f16'));
    assert.deepEqual(back.get('rows'), asStored(rows, { q8: 5 }));
    for (let i = 0; i < rows.length; i++) {
      const rowMax = Math.max(...rows.subarray(Math.floor(i / 5) * 5, Math.floor(i / 5) * 5 + 5).map(Math.abs));
      assert.ok(Math.abs(back.get('rows')![i]! - rows[i]!) <= rowMax / 254 + 1e-7, `rows[${i}] within half a step of its row's scale`);
    }
    assert.ok(Math.abs(back.get('odd')![2]! - 3.14159) < 2e-3);
    assert.ok(readFileSync(path).length < 4 * (rows.length + odd.length + exact.length) + 200, 'smaller than all-float32');
  });

  it('refuses a truncated file by name', async () => {
    const path = join(tempDir(), 't.bin');
    await saveTensors(path, new Map([['a', rows]]));
    writeFileSync(path, readFileSync(path).subarray(0, 30));
    await assert.rejects(loadTensors(path), /t\.bin.*runs past the end/);
  });
});

describe('training checkpoints', () => {
  it('give back the parameters and the AdamW state they were saved with', async () => {
    const path = join(tempDir(), 'checkpoint.bin');
    const params = new Map([['w', Float32Array.from([1, 2])], ['adam.like', Float32Array.from([3])]]);
    const adam = { step: 7, m: new Map([['w', Float32Array.from([0.1, 0.2])]]), v: new Map([['w', Float32Array.from([0.01, 0.02])]]) };
    await saveCheckpoint(path, params, adam);
    const back = await loadCheckpoint(path, 7);
    assert.deepEqual(back.params, params, 'a parameter whose name starts with "adam." but not "adam.m."/"adam.v." stays a parameter');
    assert.deepEqual(back.adam, adam);
  });
});
