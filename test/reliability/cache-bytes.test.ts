/**
 * What a long-running server keeps is bounded in bytes, not only in entries: the engine's
 * response cache counts each entry's key (a `where` filter makes it as long as a request body)
 * and an honest estimate of each response; stage 2's idle stacking buffers, one size per
 * batch size, stay under their byte budget however many sizes were used.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { REGIONS, StackBuffers } from '../../src/models/starter/cross-scoring.js';
import type { Filter } from '../../src/index/filter.js';
import type { SearchEngine } from '../../src/search/engine.js';
import { openEngine } from '../../src/search/open-engine.js';
import { tempDir } from '../helpers.js';
import { colourCollection } from '../serve/fixture.js';

describe('caches bounded in bytes', () => {
  const dir = tempDir('duo-cache-bytes-');
  let index: string;
  const engines: SearchEngine[] = [];
  const open = async (responses: number) => {
    const engine = await openEngine({ index, reranker: 'none', cacheBytes: { embeddings: 1 << 20, responses } });
    engines.push(engine);
    return engine;
  };
  const cached = async (engine: SearchEngine, text: string, where?: Filter) => (await engine.search([{ text }], { k: 10, ...(where ? { where } : {}) }))[0]!.cached === true;

  before(async () => {
    index = (await colourCollection(dir)).index;
  });
  after(async () => {
    for (const e of engines) await e.close();
  });

  it('the response cache counts keys: four answers under 9,000-character filters push out the first answer of a 64 KiB cache', async () => {
    const engine = await open(64 << 10);
    await engine.search([{ text: 'a red photo' }], { k: 10 });
    assert.equal(await cached(engine, 'a red photo'), true, 'held while there is room');
    for (let i = 0; i < 4; i++) await engine.search([{ text: 'something blue' }], { k: 10, where: { id: { prefix: `${i}${'x'.repeat(9_000)}` } } });
    assert.equal(await cached(engine, 'a red photo'), false, 'each long key counts ~18 KB: four of them fill 64 KiB');
  });

  it('a response counts what it holds: a 20 KiB cache does not keep four answers of seven hits', async () => {
    const engine = await open(20 << 10);
    const texts = ['a red photo', 'something green', 'a blue square', 'white and black'];
    for (const t of texts) await engine.search([{ text: t }], { k: 10 });
    // ~700 bytes a hit (id, path, three metadata fields) with the key: about 5.5 KiB each
    assert.equal(await cached(engine, texts[0]!), false, 'the oldest was pushed out');
    assert.equal(await cached(engine, texts[3]!), true, 'the newest is held');
  });

  it("stage 2's idle stacking buffers stay under their byte budget over every batch size", () => {
    const perImage = REGIONS * 256;
    const buffers = new StackBuffers(4, 8 << 20);
    for (let round = 0; round < 2; round++) {
      for (let n = 1; n <= 64; n++) {
        const taken = [0, 1, 2, 3].map(() => buffers.take(n * perImage));
        for (const b of taken) buffers.give(b);
        assert.ok(buffers.idle <= 8 << 20, `${buffers.idle} bytes idle after batches of ${n}`);
      }
    }
    // the size used last is the one kept: it is taken again without allocating
    const last = buffers.take(64 * perImage);
    buffers.give(last);
    assert.equal(buffers.take(64 * perImage), last);
    // without a byte budget, four of each of the 64 sizes would idle at 4 × Σn × 17 KiB = 145 MB
    assert.ok(buffers.idle > 0 && buffers.idle <= 8 << 20);
  });
});
