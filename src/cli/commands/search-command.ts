import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { createError } from '../../errors.js';
import { Searcher, type Query } from '../../search/searcher.js';
import { writeFileAtomic } from '../../util/atomic-write.js';
import { formatTable, positiveInt } from '../output.js';

interface SearchOptions {
  index: string;
  image?: string;
  k: number;
  json?: boolean;
  saveResults?: string;
  model?: string;
}

export function registerSearch(program: Command): void {
  program
    .command('search')
    .description('search an index by text, or by image with --image')
    .argument('[text]', 'text query')
    .requiredOption('--index <path>', 'index file')
    .option('--image <file>', 'query by this image instead of text')
    .option('--k <n>', 'results to return', positiveInt('--k'), 10)
    .option('--model <idOrDir>', 'model to query with (default: the one that built the index)')
    .option('--json', 'print results as JSON')
    .option('--save-results <file>', 'also write the JSON results to this file')
    .action(async (text: string | undefined, opts: SearchOptions) => {
      if ((text === undefined) === (opts.image === undefined)) {
        throw createError('BAD_ARGUMENT', 'query', 'give either a text argument or --image <file>, not both or neither');
      }
      if (opts.image !== undefined && !existsSync(opts.image)) throw createError('FILE_NOT_FOUND', opts.image);
      if (!existsSync(opts.index)) throw createError('FILE_NOT_FOUND', opts.index);
      const searcher = await Searcher.open(opts.index, { model: opts.model });
      try {
        const query: Query = text !== undefined ? { text } : { image: opts.image! };
        const [response] = await searcher.search([query], opts.k);
        const out = { index: opts.index, model: searcher.encoder.id, mode: 'stage1', k: opts.k, ...response! };
        if (opts.saveResults) await writeFileAtomic(opts.saveResults, `${JSON.stringify(out, null, 2)}\n`);
        if (opts.json) {
          console.log(JSON.stringify(out, null, 2));
          return;
        }
        console.log(`query: ${out.query}`);
        console.log(formatTable(['rank', 'score', 'image'], out.results.map((r) => [r.rank, r.score, r.path])));
        console.log(`${out.latencyMs.total.toFixed(1)} ms (encode ${out.latencyMs.encode.toFixed(1)}, search ${out.latencyMs.search.toFixed(1)}) over ${searcher.size} images`);
      } finally {
        await searcher.close();
      }
    });
}
