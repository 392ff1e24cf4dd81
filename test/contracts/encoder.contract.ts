/** The contract every Encoder passes: shapes, normalisation, batching does not change results. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { join } from 'node:path';
import type { Encoder } from '../../src/models/encoder.js';
import { tempDir, writeColourImage } from '../helpers.js';

const norm = (v: Float32Array) => Math.hypot(...v);

export function runEncoderContract(name: string, make: () => Promise<Encoder>): void {
  describe(`Encoder contract: ${name}`, () => {
    let encoder: Encoder;
    const dir = tempDir();
    const images = [join(dir, 'a.png'), join(dir, 'b.jpg'), join(dir, 'c.webp')];
    before(async () => {
      encoder = await make();
      await writeColourImage(images[0]!, [200, 30, 30], 'png');
      await writeColourImage(images[1]!, [30, 200, 30], 'jpeg');
      await writeColourImage(images[2]!, [30, 30, 200], 'webp');
    });
    after(() => encoder.dispose());

    it('reports an id and a positive dimension', () => {
      assert.ok(encoder.id.length > 0);
      assert.ok(Number.isInteger(encoder.dim) && encoder.dim > 0);
    });

    it('returns one vector of size dim per text and per image', async () => {
      const t = await encoder.encodeTexts(['a red car', 'two dogs', 'x']);
      const v = await encoder.encodeImages(images);
      assert.equal(t.length, 3);
      assert.equal(v.length, 3);
      for (const x of [...t, ...v]) assert.equal(x.length, encoder.dim);
      for (const x of [...t, ...v]) assert.ok(x.every(Number.isFinite), 'finite values');
    });

    it('has unit-norm outputs when it says it is normalised', async () => {
      if (!encoder.normalized) return;
      for (const x of [...(await encoder.encodeTexts(['a red car'])), ...(await encoder.encodeImages(images))]) {
        assert.ok(Math.abs(norm(x) - 1) < 1e-4, `norm ${norm(x)}`);
      }
    });

    it('gives the same vector for an item alone and inside a batch', async () => {
      const texts = ['a red car', 'a very long caption about a blue boat on the water at night', 'green'];
      const batch = await encoder.encodeTexts(texts, { batchSize: 3 });
      const alone = await encoder.encodeTexts([texts[0]!]);
      assert.ok(maxDiff(batch[0]!, alone[0]!) < 1e-4);
      const ib = await encoder.encodeImages(images, { batchSize: 3 });
      const ia = await encoder.encodeImages([images[2]!], { batchSize: 1 });
      assert.ok(maxDiff(ib[2]!, ia[0]!) < 1e-4);
    });

    it('reports progress over batches and handles empty input', async () => {
      const seen: number[] = [];
      await encoder.encodeImages(images, { batchSize: 2, onProgress: (d) => seen.push(d) });
      assert.deepEqual(seen, [2, 3]);
      assert.deepEqual(await encoder.encodeTexts([]), []);
    });

    it('runs no batch once its signal is aborted, and rejects with the AbortError', async () => {
      const seen: number[] = [];
      const aborted = AbortSignal.abort();
      await assert.rejects(encoder.encodeTexts(['a red car'], { signal: aborted, onProgress: (d) => seen.push(d) }), { name: 'AbortError' });
      await assert.rejects(encoder.encodeImages(images, { signal: aborted, onProgress: (d) => seen.push(d) }), { name: 'AbortError' });
      assert.equal(seen.length, 0, 'an already-aborted signal: not one batch');
      const controller = new AbortController();
      const stop = (d: number) => {
        seen.push(d);
        controller.abort();
      };
      await assert.rejects(encoder.encodeImages(images, { batchSize: 1, signal: controller.signal, onProgress: stop }), { name: 'AbortError' });
      assert.deepEqual(seen, [1], 'aborted after the first batch: the other two never ran');
      assert.equal((await encoder.encodeTexts(['a red car'])).length, 1, 'and the encoder still works');
    });

    it('fails with a named error for an unreadable image', async () => {
      await assert.rejects(encoder.encodeImages([join(dir, 'missing.jpg')]), /missing\.jpg/);
    });
  });
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}
