/**
 * Writes a starter pack's query bank (`duo query-bank`, src/models/query-bank.ts): a seeded
 * sample of a training split's captions and images, embedded by the pack itself and stored as
 * int8 rows (`query_bank.bin`), with β and λ in the manifest. The pack's id changes (indexes are
 * rebuilt: each item stores its hubness against the bank); λ alone can be changed later in the
 * manifest, since only queries use it.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { RetrievalDataset } from '../data/dataset.js';
import { createError } from '../errors.js';
import type { QueryBankManifest } from '../models/query-bank.js';
import { StarterEncoder, type StarterManifest } from '../models/starter/starter-encoder.js';
import { saveTensors } from '../models/tensor-file.js';
import { stackRows } from '../models/mat.js';
import { resolveModelSource } from '../models/model-source.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { seeded } from '../util/random.js';
import { shuffle } from './schedule.js';

export const QUERY_BANK_FILE = 'query_bank.bin';

export interface QueryBankOptions {
  pack: string;
  ds: RetrievalDataset;
  texts: number;
  images: number;
  beta: number;
  lambda: number;
  seed: number;
  command: string;
  onProgress?: (stage: 'texts' | 'images', done: number, total: number) => void;
}

export async function buildQueryBank(o: QueryBankOptions): Promise<QueryBankManifest> {
  const pack = resolve(o.pack);
  const manifestPath = join(pack, 'manifest.json');
  const checks: [flag: string, ok: boolean, range: string][] = [
    ['--texts', Number.isInteger(o.texts) && o.texts > 0 && o.texts <= o.ds.captions.length, `1 to ${o.ds.captions.length}`],
    ['--images', Number.isInteger(o.images) && o.images > 0 && o.images <= o.ds.images.length, `1 to ${o.ds.images.length}`],
    ['--beta', Number.isFinite(o.beta) && o.beta > 0, 'above 0'],
    ['--lambda', Number.isFinite(o.lambda) && o.lambda >= 0, '0 or more'],
  ];
  for (const [flag, ok, range] of checks) if (!ok) throw createError('BAD_ARGUMENT', flag, `must be ${range} for ${o.ds.name} ${o.ds.split}`);
  const rand = seeded(o.seed);
  const captions = shuffle(o.ds.captions.length, rand).slice(0, o.texts).map((i) => o.ds.captions[i]!.text);
  const images = shuffle(o.ds.images.length, rand).slice(0, o.images).map((i) => o.ds.images[i]!.source);
  // without a bank it already has: that changes no embedding, and a damaged one must not stop its replacement
  const encoder = await StarterEncoder.load(resolveModelSource(pack), { queryBank: false });
  let texts: Float32Array[];
  let imageRows: Float32Array[];
  try {
    texts = await encoder.encodeTexts(captions, { onProgress: (d, n) => o.onProgress?.('texts', d, n) });
    imageRows = await encoder.encodeImages(images, { onProgress: (d, n) => o.onProgress?.('images', d, n) });
  } finally {
    await encoder.dispose();
  }
  await saveTensors(join(pack, QUERY_BANK_FILE), new Map([['texts', stackRows(texts, encoder.dim)], ['images', stackRows(imageRows, encoder.dim)]]), () => ({ q8: encoder.dim }));
  const entry: QueryBankManifest = {
    file: QUERY_BANK_FILE,
    texts: o.texts,
    images: o.images,
    beta: o.beta,
    lambda: o.lambda,
    note: 'hubness correction (src/models/query-bank.ts): an item is indexed with h = (1/beta)·log Σ exp(beta·cos) over the bank of the other modality, and cross-modal searches rank by cosine − lambda·h',
    source: `${o.ds.name} ${o.ds.split}: ${o.texts} captions and ${o.images} images, a seeded sample (seed ${o.seed}), embedded by this pack, int8 rows`,
    command: o.command,
  };
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as StarterManifest;
  await writeFileAtomic(manifestPath, `${JSON.stringify({ ...manifest, queryBank: entry }, null, 2)}\n`);
  return entry;
}
