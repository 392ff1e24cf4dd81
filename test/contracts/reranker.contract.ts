/** The contract every CrossEncoder passes: one finite score per candidate, batching does not change scores. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { CrossEncoder } from '../../src/models/reranker.js';
import { COLOURS, tempDir, writeColourImage } from '../helpers.js';

export function runRerankerContract(name: string, make: () => Promise<CrossEncoder>): void {
  describe(`CrossEncoder contract: ${name}`, () => {
    let reranker: CrossEncoder;
    const dir = tempDir();
    const names = Object.keys(COLOURS);
    const candidates = names.map((n) => ({ id: n, image: join(dir, `${n}.jpg`), text: `a ${n} thing` }));
    before(async () => {
      reranker = await make();
      await Promise.all(names.map((n) => writeColourImage(join(dir, `${n}.jpg`), COLOURS[n]!)));
    });
    after(() => reranker.dispose());

    it('returns one finite score per candidate, with timing', async () => {
      const r = await reranker.score({ text: 'a red square' }, candidates);
      assert.equal(r.scores.length, candidates.length);
      assert.ok(r.scores.every(Number.isFinite));
      assert.ok(r.ms >= 0 && r.calls >= 1);
    });

    it('scores do not depend on the batch size', async () => {
      const a = await reranker.score({ text: 'a blue square' }, candidates, { batchSize: 1 });
      const b = await reranker.score({ text: 'a blue square' }, candidates, { batchSize: 4 });
      assert.equal(a.calls, candidates.length);
      a.scores.forEach((s, i) => assert.ok(Math.abs(s - b.scores[i]!) < 1e-4));
    });

    it('scores captions for an image query (image → text)', async () => {
      const r = await reranker.score({ image: join(dir, 'green.jpg') }, candidates);
      assert.equal(r.scores.length, candidates.length);
    });

    it('scores nothing once its signal is aborted, and rejects with the AbortError', async () => {
      const aborted = AbortSignal.abort();
      await assert.rejects(reranker.score({ text: 'a red square' }, candidates, { signal: aborted }), { name: 'AbortError' });
      await assert.rejects(reranker.score({ image: join(dir, 'green.jpg') }, candidates, { signal: aborted }), { name: 'AbortError' });
      if (reranker.regionsOf) await assert.rejects(reranker.regionsOf([], { signal: aborted }), { name: 'AbortError' });
      assert.equal((await reranker.score({ text: 'a red square' }, candidates)).scores.length, candidates.length, 'and the model still works');
    });

    it('handles no candidates', async () => {
      assert.deepEqual((await reranker.score({ text: 'x' }, [])).scores, []);
    });
  });
}
