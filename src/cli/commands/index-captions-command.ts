import { resolve } from 'node:path';
import type { Command } from 'commander';
import { datasetCaptions, readCaptionFile, type CaptionItem } from '../../data/caption-file.js';
import { openDataset } from '../../data/readers/open-dataset.js';
import { createError } from '../../errors.js';
import { buildCaptionIndex } from '../../index/build-caption-index.js';
import { defaultModelPath, loadEncoder } from '../../models/load-encoder.js';
import { formatTable, progressBar } from '../output.js';

export function registerIndexCaptions(program: Command): void {
  program
    .command('index-captions')
    .description('index a caption collection for image→text search (duo search --image on it)')
    .argument('[captionsFile]', '.txt (one caption per line) or .jsonl ({"id", "text", …} per line)')
    .requiredOption('--index <path>', 'index folder to write (replaced whole)')
    .option('--data <dir>', "or: a dataset's captions (Flickr8k/30k, Karpathy JSON, parquet)")
    .option('--split <name>', 'dataset split', 'test')
    .option('--model <idOrDir>', 'Hugging Face model id or local model directory', defaultModelPath())
    .option('--head <dir>', 'projection heads from duo train-head')
    .option('--json', 'print the report as JSON')
    .action(async (file: string | undefined, opts: { index: string; data?: string; split: string; model: string; head?: string; json?: boolean }) => {
      if ((file === undefined) === (opts.data === undefined)) throw createError('BAD_ARGUMENT', 'captions', 'give either a captions file or --data <dir>, not both or neither');
      let captions: CaptionItem[];
      if (file !== undefined) captions = await readCaptionFile(file);
      else captions = datasetCaptions(await openDataset(opts.data!, { split: opts.split }));
      const encoder = await loadEncoder(opts.model, { head: opts.head });
      const bar = progressBar('encoding');
      try {
        const report = await buildCaptionIndex({
          captions,
          indexPath: opts.index,
          encoder,
          modelSpec: opts.model,
          headSpec: opts.head ? resolve(opts.head) : undefined,
          source: file ?? opts.data!,
          onProgress: bar.update,
        });
        bar.stop();
        if (opts.json) console.log(JSON.stringify({ ...report, model: encoder.id }, null, 2));
        else {
          console.log(formatTable(['captions', 'seconds'], [[report.total, report.seconds]]));
          console.log(`index: ${report.indexPath} (model ${encoder.id})`);
        }
      } finally {
        bar.stop();
        await encoder.dispose();
      }
    });
}
