import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { readFlickr8k } from '../../data/readers/flickr8k.js';
import { createError } from '../../errors.js';
import { buildIndex } from '../../index/build-index.js';
import { defaultModelPath, loadEncoder } from '../../models/load-encoder.js';
import { SearchEngine } from '../../search/engine.js';
import { formatTable, progressBar } from '../output.js';

const QUERIES = ['a black dog running in the snow', 'a child in a red shirt', 'people on a beach near blue water', 'a man riding a bike'];

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('index the Flickr8k dev images with the default model, then answer a few example queries')
    .option('--data <dir>', 'Flickr8k folder', '../shared/datasets/flickr8k')
    .option('--split <name>', 'split whose images to index', 'dev')
    .option('--index <path>', 'index file', 'runs/demo/flickr8k-dev.duo')
    .option('--model <idOrDir>', 'model', defaultModelPath())
    .action(async (opts: { data: string; split: string; index: string; model: string }) => {
      if (!existsSync(opts.data)) throw createError('FILE_NOT_FOUND', resolve(opts.data));
      const ds = await readFlickr8k(opts.data, opts.split);
      const root = join(opts.data, 'images');
      const encoder = await loadEncoder(opts.model);
      const bar = progressBar(`indexing ${ds.images.length} ${opts.split} images`);
      const report = await buildIndex({
        root,
        indexPath: opts.index,
        encoder,
        modelSpec: opts.model,
        only: new Set(ds.images.map((i) => i.id)),
        onProgress: bar.update,
      });
      bar.stop();
      console.log(`indexed ${report.total} images (${report.encoded} encoded, ${report.reused} unchanged, ${report.failed.length} failed) in ${report.seconds.toFixed(1)} s → ${opts.index}`);
      console.log(`model: ${encoder.id}\n`);
      const engine = await SearchEngine.open(opts.index, { encoder });
      const responses = await engine.search(QUERIES.map((text) => ({ text })), { k2: 5 });
      for (const r of responses) {
        console.log(`query: ${r.query}`);
        console.log(formatTable(['rank', 'score', 'image'], r.results.map((h) => [h.rank, h.score, h.id])));
        console.log('');
      }
      await engine.close();
    });
}
