import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { migrateV1 } from '../../index/migrate-v1.js';
import { loadReranker } from '../../models/load-reranker.js';

export function registerMigrate(program: Command): void {
  program
    .command('migrate')
    .description('convert a format-1 index file (duo-search 0.1) into an index folder, without encoding anything again')
    .argument('<oldIndex>', 'the format-1 .duo file')
    .requiredOption('--index <path>', 'the new index folder')
    .option('--reranker <dir>', 'the cross-encoder whose image side <oldIndex>.stage2 holds (format 1 did not record it)')
    .action(async (old: string, opts: { index: string; reranker?: string }) => {
      let reranker: { id: string; spec: string } | undefined;
      if (opts.reranker) {
        const loaded = await loadReranker(opts.reranker);
        reranker = { id: loaded.id, spec: resolve(opts.reranker) };
        await loaded.dispose();
      } else if (existsSync(`${old}.stage2`)) {
        process.stderr.write(`duo: ${old}.stage2 is not carried over without --reranker <dir> (the cross-encoder that made it)\n`);
      }
      const r = await migrateV1(old, opts.index, { reranker });
      console.log(`${opts.index}: ${r.items} items${r.stage2 ? ' with their stage-2 sides' : ''}`);
    });
}
