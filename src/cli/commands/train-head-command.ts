import type { Command } from 'commander';
import { join } from 'node:path';
import { createError } from '../../errors.js';
import { defaultModelPath, loadEncoder } from '../../models/load-encoder.js';
import { trainHead } from '../../train/train-head.js';
import { addMlflowOptions, withMlflow } from '../mlflow-options.js';
import { formatTable, positiveInt, positiveNumber, progressBar } from '../output.js';

export function registerTrainHead(program: Command): void {
  const command = program
    .command('train-head')
    .description('train projection heads on a frozen encoder\'s cached Flickr8k embeddings; report dev before and after')
    .option('--encoder <idOrDir>', 'the frozen encoder (hub id or local directory)', defaultModelPath())
    .option('--head <kind>', 'linear or mlp (residual: starts as the identity)', 'linear')
    .option('--data <dir>', 'Flickr8k folder', '../shared/datasets/flickr8k')
    .option('--run <name>', 'run name', `head-${new Date().toISOString().replace(/[:.]/g, '-')}`)
    .option('--runs <dir>', 'where runs live', 'runs')
    .option('--resume', 'continue the run named by --run')
    .option('--lr <x>', 'peak learning rate', positiveNumber('--lr'), 1e-3)
    .option('--weight-decay <x>', 'AdamW weight decay', positiveNumber('--weight-decay'), 1e-4)
    .option('--batch-size <n>', 'pairs per batch', positiveInt('--batch-size'), 512)
    .option('--epochs <n>', 'maximum epochs', positiveInt('--epochs'), 20)
    .option('--patience <n>', 'early-stopping patience', positiveInt('--patience'), 3)
    .option('--hidden <n>', 'MLP hidden width', positiveInt('--hidden'), 1024)
    .option('--seed <n>', 'random seed', positiveInt('--seed'), 1)
    .option('--cache <dir>', 'embedding cache', '.cache');
  addMlflowOptions(command)
    .action(async (o: Record<string, string | number | boolean | undefined>) => {
      const head = o.head;
      if (head !== 'linear' && head !== 'mlp') throw createError('BAD_ARGUMENT', '--head', `must be linear or mlp, got "${head}"`);
      const encoder = await loadEncoder(String(o.encoder));
      const bars = new Map<string, ReturnType<typeof progressBar>>();
      try {
        const runDir = join(String(o.runs), String(o.run));
        const { before, after, headDir } = await withMlflow(o, runDir, (tracker) => trainHead({
          encoder,
          encoderSpec: String(o.encoder),
          head,
          data: String(o.data),
          runDir,
          cacheDir: String(o.cache),
          lr: Number(o.lr),
          weightDecay: Number(o.weightDecay),
          batchSize: Number(o.batchSize),
          epochs: Number(o.epochs),
          patience: Number(o.patience),
          hidden: Number(o.hidden),
          seed: Number(o.seed),
          resume: Boolean(o.resume),
          onLog: (l) => console.log(l),
          onProgress: (what, d, n) => {
            if (!bars.has(what)) bars.set(what, progressBar(what));
            bars.get(what)!.update(d, n);
            if (d === n) bars.get(what)!.stop();
          },
          tracker,
        }));
        const r = (label: string, m: typeof before) => [label, ...[m.textToImage, m.imageToText].flatMap((x) => [x['R@1'], x['R@5'], x['R@10']].map((v) => v.toFixed(1))), m.rsum.toFixed(1)];
        console.log(formatTable(['Flickr8k dev', 't→i R@1', 'R@5', 'R@10', 'i→t R@1', 'R@5', 'R@10', 'rsum'], [r('before (frozen)', before), r(`after (${o.head} head)`, after)]));
        console.log(`head: ${headDir} (use with --head ${headDir} on index, search or eval)`);
      } finally {
        await encoder.dispose();
      }
    });
}
