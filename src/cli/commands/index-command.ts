import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { createError } from '../../errors.js';
import type { AnnFlags } from '../../index/ann.js';
import { buildIndex } from '../../index/build-index.js';
import { loadReranker } from '../../models/load-reranker.js';
import { defaultModelPath, loadEncoder } from '../../models/load-encoder.js';
import { addAnnOptions, annFlags } from '../ann-options.js';
import { formatTable, positiveInt, printable, progressBar } from '../output.js';

function readList(path: string): Set<string> {
  try {
    return new Set(readFileSync(path, 'utf8').split(/\r?\n/).map((l) => l.trim()).filter(Boolean));
  } catch {
    throw createError('FILE_NOT_FOUND', path);
  }
}

export function registerIndex(program: Command): void {
  const command = program
    .command('index')
    .description('index a folder of images (recursive, resumable: reruns encode only new or changed files)')
    .argument('<imagesDir>', 'folder of images')
    .requiredOption('--index <path>', 'index folder to create or update')
    .option('--model <idOrDir>', 'Hugging Face model id or local model directory', defaultModelPath())
    .option('--head <dir>', 'projection heads from duo train-head, applied at index and query time')
    .option('--reranker <dir>', "also store this cross-encoder's image side (e.g. the starter pack's regions) for stage 2; an existing index keeps the one it recorded")
    .option('--only <listFile>', 'index only the files named in this list (one path relative to imagesDir a line)')
    .option('--batch-size <n>', 'images per encoder batch', positiveInt('--batch-size'), 16)
    .option('--max-pixels <n>', 'refuse images with more pixels than this', positiveInt('--max-pixels'))
    .option('--checkpoint-every <n>', 'append a segment (a checkpoint a killed run resumes from) after this many images', positiveInt('--checkpoint-every'), 512)
    .option('--json', 'print the report as JSON')
    .action(async (imagesDir: string, opts: AnnFlags & { index: string; model: string; head?: string; reranker?: string; only?: string; batchSize: number; maxPixels?: number; checkpointEvery: number; json?: boolean }) => {
      const encoder = await loadEncoder(opts.model, { head: opts.head });
      // without --reranker, an existing index's recorded cross-encoder is loaded by buildIndex
      const rerankerSpec = opts.reranker;
      const reranker = rerankerSpec ? await loadReranker(rerankerSpec) : undefined;
      const bar = progressBar('encoding');
      try {
        const report = await buildIndex({
          root: imagesDir,
          indexPath: opts.index,
          encoder,
          modelSpec: opts.model,
          headSpec: opts.head ? resolve(opts.head) : undefined,
          reranker,
          rerankerSpec,
          only: opts.only ? readList(opts.only) : undefined,
          batchSize: opts.batchSize,
          maxPixels: opts.maxPixels,
          checkpointEvery: opts.checkpointEvery,
          onProgress: bar.update,
          ann: annFlags(opts),
        });
        bar.stop();
        if (opts.json) {
          console.log(JSON.stringify({ ...report, model: encoder.id }, null, 2));
          return;
        }
        console.log(
          formatTable(
            ['images', 'encoded', 'unchanged', 'removed', 'failed', 'segments', 'seconds'],
            [[report.total, report.encoded, report.reused, report.removed, report.failed.length, report.segments, report.seconds]],
          ),
        );
        for (const f of report.failed.slice(0, 20)) console.error(printable(`skipped ${f.id}: ${f.error}`));
        if (report.failed.length > 20) console.error(`… and ${report.failed.length - 20} more skipped`);
        console.log(`index: ${report.indexPath} (model ${encoder.id}; scan: ${report.scan})`);
      } finally {
        bar.stop();
        await encoder.dispose();
        await reranker?.dispose();
      }
    });
  addAnnOptions(command);
}
