import type { Command } from 'commander';
import { resolve } from 'node:path';
import { embedShard, parseShard } from '../../index/embed-shard.js';
import { defaultModelPath, loadEncoder } from '../../models/load-encoder.js';
import { formatTable, positiveInt, progressBar } from '../output.js';

export function registerEmbed(program: Command): void {
  program
    .command('embed')
    .description('embed one shard of a folder of images into plain files (.npy, ids, metadata), for duo import on another machine; resumable')
    .argument('<imagesDir>', 'folder of images')
    .requiredOption('--out <dir>', 'output folder (shared by all shards)')
    .option('--shard <i/n>', 'embed shard i of n (1-based; an image belongs to the shard its id hashes to)')
    .option('--model <idOrDir>', 'Hugging Face model id or local model directory', defaultModelPath())
    .option('--head <dir>', 'projection heads from duo train-head')
    .option('--batch-size <n>', 'images per encoder batch', positiveInt('--batch-size'), 16)
    .option('--max-pixels <n>', 'refuse images with more pixels than this', positiveInt('--max-pixels'))
    .option('--json', 'print the report as JSON')
    .action(async (imagesDir: string, opts: { out: string; shard?: string; model: string; head?: string; batchSize: number; maxPixels?: number; json?: boolean }) => {
      const shard = parseShard(opts.shard);
      const encoder = await loadEncoder(opts.model, { head: opts.head });
      const bar = progressBar('embedding');
      try {
        const r = await embedShard({ root: imagesDir, out: opts.out, encoder, modelSpec: opts.model, headSpec: opts.head ? resolve(opts.head) : undefined, shard, batchSize: opts.batchSize, maxPixels: opts.maxPixels, onProgress: bar.update });
        bar.stop();
        if (opts.json) console.log(JSON.stringify({ ...r, out: opts.out, model: encoder.id }, null, 2));
        else {
          console.log(formatTable(['shard', 'rows', 'encoded', 'unchanged', 'failed'], [[r.name, r.rows, r.encoded, r.reused, r.failed.length]]));
          for (const f of r.failed.slice(0, 20)) console.error(`skipped ${f.id}: ${f.error}`);
          console.log(`wrote ${opts.out}/${r.name}.npy, .ids.txt, .meta.jsonl, .json (model ${encoder.id})`);
        }
      } finally {
        bar.stop();
        await encoder.dispose();
      }
    });
}
