/**
 * The index the server benches serve: the Flickr8k dev images (1,000) indexed with the starter
 * pack and its cross-encoder's image side stored (`duo index <dev images> --reranker
 * models/starter`), resumable (a built index is reused), and the dev captions.
 */
import { join } from 'node:path';
import type { RetrievalDataset } from '../src/data/dataset.js';
import { readFlickr8k } from '../src/data/readers/flickr8k.js';
import { buildIndex } from '../src/index/build-index.js';
import { defaultModelPath, loadEncoder } from '../src/models/load-encoder.js';
import { loadReranker } from '../src/models/load-reranker.js';

export async function serveDevIndex(data: string, index: string): Promise<RetrievalDataset> {
  const ds = await readFlickr8k(data, 'dev');
  const encoder = await loadEncoder(defaultModelPath());
  const reranker = await loadReranker(defaultModelPath());
  console.error('indexing the dev images (resumes if already built)…');
  try {
    await buildIndex({ root: join(data, 'images'), indexPath: index, encoder, modelSpec: defaultModelPath(), reranker, rerankerSpec: defaultModelPath(), only: new Set(ds.images.map((i) => i.id)) });
  } finally {
    await encoder.dispose();
    await reranker.dispose();
  }
  return ds;
}
