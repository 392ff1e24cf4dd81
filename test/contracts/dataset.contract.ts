/** What every dataset reader guarantees to eval: ids unique, every caption's image present, every image captioned. */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import type { RetrievalDataset } from '../../src/data/dataset.js';

export function assertDatasetContract(ds: RetrievalDataset, expect: { images: number; captions: number }): void {
  assert.equal(ds.images.length, expect.images, 'image count');
  assert.equal(ds.captions.length, expect.captions, 'caption count');
  const ids = new Set(ds.images.map((i) => i.id));
  assert.equal(ids.size, ds.images.length, 'unique image ids');
  for (const c of ds.captions) {
    assert.ok(ids.has(c.imageId), `caption's image ${c.imageId} is in the split`);
    assert.ok(c.text.length > 0 && c.text === c.text.trim(), 'caption text is trimmed and non-empty');
  }
  const captioned = new Set(ds.captions.map((c) => c.imageId));
  for (const img of ds.images) {
    assert.ok(captioned.has(img.id), `${img.id} has a caption`);
    if (typeof img.source === 'string') assert.ok(existsSync(img.source), `${img.source} exists`);
    else assert.ok(img.source.length > 0, `${img.id} has bytes`);
  }
}
