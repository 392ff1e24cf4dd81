import assert from 'node:assert/strict';
import { cpSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DuoError } from '../../src/errors.js';
import { BlipItmReranker } from '../../src/models/blip/blip-itm.js';
import { colourBlipFiles } from '../fixtures/colour-blip.js';
import { guardedBatches } from '../../src/models/reranker.js';
import { packageRoot } from '../../src/util/package-root.js';
import { runRerankerContract } from '../contracts/reranker.contract.js';
import { COLOURS, tempDir, writeColourImage } from '../helpers.js';

const BLIP_DIR = join(packageRoot(), 'models', 'colour-blip');

runRerankerContract('BLIP ITM adapter on the colour-blip fixture', () => BlipItmReranker.load(BLIP_DIR));
runRerankerContract('BLIP ITM + ITC on the colour-blip fixture', () => BlipItmReranker.load(BLIP_DIR, { itcWeight: 1 }));

describe('BLIP ITM adapter', () => {
  it('ranks the matching image first for every colour, and the matching caption first for an image', async () => {
    const dir = tempDir();
    const names = Object.keys(COLOURS);
    await Promise.all(names.map((n) => writeColourImage(join(dir, `${n}.png`), COLOURS[n]!, 'png')));
    const blip = await BlipItmReranker.load(BLIP_DIR);
    const images = names.map((n) => ({ id: n, image: join(dir, `${n}.png`) }));
    for (const n of names) {
      const { scores } = await blip.score({ text: `a photo of a ${n} square` }, images);
      assert.equal(names[scores.indexOf(Math.max(...scores))], n, `text "${n}"`);
    }
    const captions = names.map((n) => ({ id: `c-${n}`, text: `something ${n}` }));
    const { scores } = await blip.score({ image: join(dir, 'yellow.png') }, captions);
    assert.equal(captions[scores.indexOf(Math.max(...scores))]!.id, 'c-yellow');
    await blip.dispose();
  });

  it('caches image embeddings by candidate id, so a second query runs no vision pass', async () => {
    const dir = tempDir();
    await writeColourImage(join(dir, 'r.jpg'), COLOURS.red!);
    const blip = await BlipItmReranker.load(BLIP_DIR);
    await blip.warm([{ id: 'r', image: join(dir, 'r.jpg') }]);
    const before = blip.cacheStats;
    rmSync(join(dir, 'r.jpg')); // a vision pass would now fail
    const { scores } = await blip.score({ text: 'red' }, [{ id: 'r', image: join(dir, 'r.jpg') }]);
    assert.ok(scores[0]! > 0);
    assert.equal(blip.cacheStats.hits, before.hits + 1);
    await blip.dispose();
  });

  it('an aborted score runs no vision pass', async () => {
    const dir = tempDir();
    await writeColourImage(join(dir, 'g.jpg'), COLOURS.green!);
    const blip = await BlipItmReranker.load(BLIP_DIR);
    await assert.rejects(blip.score({ text: 'green' }, [{ id: 'g', image: join(dir, 'g.jpg') }], { signal: AbortSignal.abort() }), { name: 'AbortError' });
    assert.equal(blip.cacheStats.entries, 0);
    await blip.dispose();
  });

  it('the committed fixture is what the generator writes', () => {
    for (const [name, data] of colourBlipFiles()) assert.ok(readFileSync(join(BLIP_DIR, name)).equals(Buffer.from(data)), name);
  });

  it('names missing files and refuses mismatched candidates', async () => {
    const dir = join(tempDir(), 'blip');
    cpSync(BLIP_DIR, dir, { recursive: true });
    rmSync(join(dir, 'onnx', 'text_itm.onnx'));
    await assert.rejects(BlipItmReranker.load(dir), (e: unknown) => e instanceof DuoError && e.code === 'MODEL_NOT_FOUND' && /text_itm\.onnx/.test(e.message));
    const blip = await BlipItmReranker.load(BLIP_DIR);
    await assert.rejects(blip.score({ text: 'red' }, [{ id: 'x', text: 'no image here' }]), /candidate x/);
    await blip.dispose();
  });
});

describe('memory guard', () => {
  it('halves the batch on an out-of-memory error and still scores everything', async () => {
    const sizes: number[] = [];
    const { results, batchSize } = await guardedBatches([1, 2, 3, 4, 5, 6, 7], 8, async (batch) => {
      sizes.push(batch.length);
      if (batch.length > 2) throw new Error('Failed to allocate memory for requested buffer');
      return batch.map((x) => x * 10);
    });
    assert.deepEqual(results, [10, 20, 30, 40, 50, 60, 70]);
    assert.equal(batchSize, 2);
    assert.deepEqual(sizes.slice(0, 3), [7, 4, 2]);
  });

  it('runs no further batch once the signal is aborted', async () => {
    const controller = new AbortController();
    const ran: number[][] = [];
    const work = guardedBatches([1, 2, 3], 1, async (batch) => {
      ran.push(batch);
      controller.abort();
      return batch;
    }, { signal: controller.signal });
    await assert.rejects(work, { name: 'AbortError' });
    assert.deepEqual(ran, [[1]]);
  });

  it('passes other errors through, and gives up at batch size 1', async () => {
    await assert.rejects(guardedBatches([1, 2], 2, async () => { throw new Error('bad input'); }), /bad input/);
    await assert.rejects(guardedBatches([1], 4, async () => { throw new Error('out of memory'); }), /out of memory/);
  });
});
