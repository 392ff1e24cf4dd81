import type { Command } from 'commander';
import { resolve } from 'node:path';
import { openDataset } from '../../data/readers/open-dataset.js';
import { ALPHA_TIE_RULE } from '../../eval/metrics.js';
import { crossManifestFile, DEFAULT_ALPHAS, DIRECTIONS, tuneFusion, type TuneFusionResult } from '../../eval/tune-fusion.js';
import { loadEncoder } from '../../models/load-encoder.js';
import { StarterCrossEncoder } from '../../models/starter/starter-cross-encoder.js';
import { flagOf, parseAlphaList, parseSearchOptions } from '../../search/options.js';
import { formatTable, positiveInt, progressBar } from '../output.js';

interface TuneFusionFlags {
  pack: string;
  data: string;
  split: string;
  k1: string;
  alphas: string;
  guardK1: string;
  maxQueries?: number;
  dryRun?: boolean;
  json?: boolean;
}

const LABEL = { textToImage: 'text→image', imageToText: 'image→text' } as const;

function printTable(r: TuneFusionResult): void {
  const cells = (m: { 'R@1': number; 'R@5': number; 'R@10': number; rsum: number }) => [m['R@1'].toFixed(2), m['R@5'].toFixed(2), m['R@10'].toFixed(2), m.rsum.toFixed(2)];
  const rows: string[][] = [];
  const guard = (row?: TuneFusionResult['rows'][number]) => r.guardK1.map((k) => (row ? row.guardR1![k]!.toFixed(2) : ''));
  for (const d of DIRECTIONS) {
    rows.push([LABEL[d], 'stage 1', ...cells(r.stage1[d]), ...guard(), '']);
    for (const row of r.rows.filter((x) => x.direction === d)) {
      const delta = row.rsum - r.stage1[d].rsum;
      const mark = row.alpha === r.chosen[d] ? '  ← chosen' : r.guardK1.length > 0 && !row.aboveStage1 ? '  (R@1 not above stage 1 at every k1)' : '';
      rows.push([LABEL[d], `α ${row.alpha}`, ...cells(row), ...guard(row), `${delta >= 0 ? '+' : ''}${delta.toFixed(2)}${mark}`]);
    }
  }
  console.log(`${r.dataset} ${r.split}: k1 ${r.k1}, weighted fusion; ${r.queries.textToImage} text→image and ${r.queries.imageToText} image→text queries`);
  console.log(formatTable(['direction', 'ranking', 'R@1', 'R@5', 'R@10', 'rsum', ...r.guardK1.map((k) => `R@1 at k1 ${k}`), 'rsum − stage 1'], rows));
  for (const d of DIRECTIONS) if (r.guardK1.length > 0 && !r.guardMet[d]) console.log(`${LABEL[d]}: no α kept R@1 above stage 1 at every k1; chosen by rsum alone`);
  const was = r.previous ? ` (was ${r.previous.textToImage} and ${r.previous.imageToText})` : '';
  console.log(`chosen: α ${r.chosen.textToImage} text→image, ${r.chosen.imageToText} image→text${was}`);
  console.log(r.written ? `written to ${r.manifest} (crossEncoder.fusion)` : `--dry-run: ${r.manifest} not changed`);
}

export function registerTuneFusion(program: Command): void {
  program
    .command('tune-fusion')
    .description(
      "re-choose a starter pack's weighted-fusion α per direction (after its bi-encoder changed): hybrid evaluation of both directions through the engine for every α of a grid, " +
        `then per direction the α with the best R@1 + R@5 + R@10 (${ALPHA_TIE_RULE}), written into the pack's manifest.json as crossEncoder.fusion.alpha (text→image) and alphaImageToText (image→text), with how they were chosen`,
    )
    .requiredOption('--pack <dir>', "starter pack with a cross-encoder: its bi-encoder and cross-encoder are evaluated, its manifest.json is rewritten")
    .requiredOption('--data <path>', 'dataset (e.g. the Flickr8k folder)')
    .option('--split <name>', 'split to choose on', 'dev')
    .option('--k1 <n>', 'candidates stage 2 reranks', '100')
    .option('--alphas <list>', 'the grid of α (stage 2\'s share) to try, comma-separated', DEFAULT_ALPHAS.join(','))
    .option('--guard-k1 <list>', 'other k1 at which the chosen α must keep R@1 above stage 1 (when some α does), comma-separated; "" for none', '50,200')
    .option('--max-queries <n>', 'evaluate only the first N queries per direction', positiveInt('--max-queries'))
    .option('--dry-run', 'print the sweep and the choice; write nothing')
    .option('--json', 'print one JSON object')
    .action(async (flags: TuneFusionFlags) => {
      const k1 = parseSearchOptions({ k1: Number(flags.k1) }, flagOf).k1;
      const alphas = parseAlphaList('--alphas', flags.alphas);
      const guardK1 = flags.guardK1.trim() === '' ? [] : flags.guardK1.split(',').map((v) => parseSearchOptions({ k1: Number(v) }, () => '--guard-k1').k1);
      const pack = resolve(flags.pack);
      crossManifestFile(pack); // refuse a pack without a cross-encoder before loading anything
      const ds = await openDataset(flags.data, { split: flags.split });
      const encoder = await loadEncoder(pack);
      // loaded inside the try: if the cross-encoder fails to load, the encoder's sessions are still released
      let reranker: StarterCrossEncoder | undefined;
      const bar = progressBar('tune-fusion');
      try {
        reranker = await StarterCrossEncoder.load(pack);
        const r = await tuneFusion(ds, encoder, reranker, {
          pack,
          k1,
          alphas,
          guardK1,
          dryRun: Boolean(flags.dryRun),
          maxQueries: flags.maxQueries,
          command: `duo ${process.argv.slice(2).join(' ')}`,
          onProgress: (_s, d, n) => bar.update(d, n),
        });
        bar.stop();
        if (flags.json) console.log(JSON.stringify(r));
        else printTable(r);
      } finally {
        bar.stop();
        await reranker?.dispose();
        await encoder.dispose();
      }
    });
}
