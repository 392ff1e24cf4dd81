import type { Command } from 'commander';
import { join, resolve } from 'node:path';
import { exportCrossEncoder } from '../../models/starter/export-pack.js';
import { trainCross } from '../../train/train-cross.js';
import { packageRoot } from '../../util/package-root.js';
import { positiveInt, positiveNumber } from '../output.js';

export function registerTrainCross(program: Command): void {
  program
    .command('train-cross')
    .description('train the starter cross-encoder (caption tokens attending over image regions) with hard negatives from the starter bi-encoder')
    .option('--data <dir>', 'Flickr8k folder', '../shared/datasets/flickr8k')
    .option('--pack <dir>', 'starter pack: its bi-encoder mines negatives, its vocabulary is shared', join(packageRoot(), 'models', 'starter'))
    .option('--run <name>', 'run name', `cross-${new Date().toISOString().replace(/[:.]/g, '-')}`)
    .option('--runs <dir>', 'where runs live', 'runs')
    .option('--resume', 'continue the run named by --run')
    .option('--dim <n>', 'token and region size', positiveInt('--dim'), 64)
    .option('--lambda <x>', 'attention sharpness', positiveNumber('--lambda'), 4)
    .option('--batch-size <n>', 'captions per batch', positiveInt('--batch-size'), 32)
    .option('--negatives <n>', 'hard negatives per caption', positiveInt('--negatives'), 7)
    .option('--bi-feature', "add the bi-encoder's cosine to the score with a learned weight")
    .option('--hard <n>', 'how many of the negatives are hard (the rest random)', positiveInt('--hard'), 3)
    .option('--hard-pool <n>', 'sample negatives from the bi-encoder\'s top N wrong images', positiveInt('--hard-pool'), 30)
    .option('--epochs <n>', 'maximum epochs (one caption per image each)', positiveInt('--epochs'), 20)
    .option('--lr <x>', 'peak learning rate', positiveNumber('--lr'), 2e-3)
    .option('--weight-decay <x>', 'AdamW weight decay', positiveNumber('--weight-decay'), 1e-4)
    .option('--patience <n>', 'early-stopping patience', positiveInt('--patience'), 4)
    .option('--seed <n>', 'random seed', positiveInt('--seed'), 1)
    .option('--eval-k1 <n>', 'candidates reranked in dev evaluation', positiveInt('--eval-k1'), 100)
    .option('--cache <dir>', 'feature cache', '.cache')
    .option('--export', 'add the best weights to --pack when done')
    .action(async (o: Record<string, string | number | boolean | undefined>) => {
      const runDir = join(String(o.runs), String(o.run));
      const { best } = await trainCross({
        data: String(o.data),
        pack: String(o.pack),
        runDir,
        cacheDir: String(o.cache),
        dim: Number(o.dim),
        lambda: Number(o.lambda),
        batchSize: Number(o.batchSize),
        negatives: Number(o.negatives),
        hard: Number(o.hard),
        biFeature: Boolean(o.biFeature),
        hardPool: Number(o.hardPool),
        epochs: Number(o.epochs),
        lr: Number(o.lr),
        weightDecay: Number(o.weightDecay),
        patience: Number(o.patience),
        seed: Number(o.seed),
        evalK1: Number(o.evalK1),
        resume: Boolean(o.resume),
        command: `duo ${process.argv.slice(2).join(' ')}`,
        onLog: (l) => console.log(l),
      });
      console.log(`run: ${runDir}; best epoch ${best?.epoch}`);
      if (o.export) {
        await exportCrossEncoder(runDir, resolve(String(o.pack)));
        console.log(`cross-encoder added to ${o.pack}`);
      }
    });
}
