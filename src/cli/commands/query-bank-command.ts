import type { Command } from 'commander';
import { openDataset } from '../../data/readers/open-dataset.js';
import { buildQueryBank } from '../../train/build-query-bank.js';
import { positiveInt, positiveNumber, progressBar } from '../output.js';

interface QueryBankFlags {
  pack: string;
  data: string;
  split: string;
  texts: number;
  images: number;
  beta: number;
  lambda: number;
  seed: number;
}

export function registerQueryBank(program: Command): void {
  program
    .command('query-bank')
    .description(
      "give a starter pack a bank of typical queries for hubness correction: a seeded sample of a training split's captions and images embedded by the pack; " +
        'each indexed item then stores its hubness against the other modality (h = (1/β)·log Σ exp(β·cos)) and cross-modal searches rank by cosine − λ·h. The model id changes: rebuild indexes',
    )
    .requiredOption('--pack <dir>', 'the starter pack')
    .requiredOption('--data <path>', 'dataset (e.g. the Flickr8k folder)')
    .option('--split <name>', 'the split to sample (never the one you evaluate on)', 'train')
    .option('--texts <n>', 'captions in the bank', positiveInt('--texts'), 3000)
    .option('--images <n>', 'images in the bank', positiveInt('--images'), 1000)
    .option('--beta <x>', 'sharpness of the log-sum-exp (10: chosen on Flickr8k dev for the starter pack)', positiveNumber('--beta'), 10)
    .option('--lambda <x>', 'share of hubness a cross-modal score loses (used at query time; 1: chosen on Flickr8k dev)', Number, 1)
    .option('--seed <n>', 'sampling seed', positiveInt('--seed'), 1)
    .action(async (o: QueryBankFlags) => {
      const ds = await openDataset(o.data, { split: o.split });
      const bar = progressBar('query bank');
      try {
        const entry = await buildQueryBank({ pack: o.pack, ds, texts: o.texts, images: o.images, beta: o.beta, lambda: o.lambda, seed: o.seed, command: `duo ${process.argv.slice(2).join(' ')}`, onProgress: (_s, d, n) => bar.update(d, n) });
        bar.stop();
        console.log(`query bank of ${entry.texts} captions and ${entry.images} images (β ${entry.beta}, λ ${entry.lambda}) written to ${o.pack}; the model id changed: rebuild indexes made with this pack`);
      } finally {
        bar.stop();
      }
    });
}
