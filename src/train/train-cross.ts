/**
 * Trains the starter cross-encoder on Flickr8k train: every caption of a batch is scored by
 * attention against every image of it (symmetric InfoNCE), and batches are built around hard
 * negatives mined by the starter bi-encoder (the images it ranks highest for a caption that
 * are not the caption's own; with `hardDirections` imageToText also the captions it ranks
 * highest for an image that are not the image's own). Evaluated on dev in both directions by
 * reranking the bi-encoder's top k1 of every dev caption (text→image) and every dev image
 * (image→text) and fusing the two scores, as the engine does; the epoch is chosen by the
 * directions in `chooseOn`.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createError } from '../errors.js';
import { chooseAlpha, rankMetrics, recallSum, type RankMetrics } from '../eval/metrics.js';
import { mat, matmul, normalizeRows, type Mat } from '../models/mat.js';
import { attentionScores, type TokenRows } from '../models/starter/attention.js';
import { BACKBONE_DIM } from '../models/starter/backbone.js';
import { needsMobilenet, packHasMobilenet } from '../models/starter/backbone-runner.js';
import { CELLS, crossScores, globalDim, globalInputs, headRegions, regionInputs, regionRows, REGIONS, stackTokens, type CrossConfig, type CrossHead, type GlobalKind, type RegionInputs, type Standardiser } from '../models/starter/cross-scoring.js';
import { saveTensors, type Params } from '../models/tensor-file.js';
import { fuse } from '../search/fusion.js';
import { flagOf } from '../search/options.js';
import { adamwInit, adamwStep, type AdamWState } from './adamw.js';
import { attentionBackward } from './batched-attention.js';
import { computeStandardiser, gloveTokens, initCross } from './cross-init.js';
import { MAX_LOG_SCALE, seeded } from './dual-encoder.js';
import { contrastive, normalizeRowsBackward } from './layers.js';
import { writeJson } from './runs.js';
import { dropFeatures, dropWords } from './dropout.js';
import { warmupCosine } from './schedule.js';
import { hardBatches, prepare, type HardDirection, type Prepared } from './cross-data.js';
import { loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { appendFile } from 'node:fs/promises';
import type { TrainingTracker } from './mlflow.js';

export interface TrainCrossOptions {
  data: string;
  pack: string;
  runDir: string;
  cacheDir: string;
  dim: number;
  lambda: number;
  /** also read adjacent word pairs seen this often in train captions as tokens (0: single words only) */
  pairMinCount: number;
  /** the global region's input (default `pooled`; `pooled+mobilenet` needs a pack whose backbone has MobileNetV2) */
  global?: GlobalKind;
  /** start token rows from GloVe (words, and word pairs as the sum of their words) instead of at random */
  initGlove?: boolean;
  /** images per batch; every caption in it is scored against every image (in-batch negatives) */
  batchSize: number;
  /** share of a batch that is a bi-encoder hard negative of another image in it */
  hard: number;
  /** hard negatives are drawn from the bi-encoder's top N wrong images for a caption (and top N wrong captions for an image) */
  hardPool: number;
  /** which rankings hard negatives are mined for (default textToImage: a caption's wrong images) */
  hardDirections?: readonly HardDirection[];
  /** the directions whose dev weighted-fusion R@1+R@5+R@10 are summed to choose the epoch (default textToImage) */
  chooseOn?: readonly HardDirection[];
  epochs: number;
  lr: number;
  weightDecay: number;
  featureDropout: number;
  wordDropout: number;
  patience: number;
  seed: number;
  evalK1: number;
  resume?: boolean;
  command: string;
  onLog?: (line: string) => void;
  /** told when the run folder holds its params and after every epoch (MLflow, src/train/mlflow.ts) */
  tracker?: TrainingTracker;
}

/** One direction's dev metrics: stage 1, stage 2 alone, fused at the best α, rrf. */
export interface CrossDev {
  stage1: RankMetrics;
  replace: RankMetrics;
  weighted: RankMetrics;
  rrf: RankMetrics;
}

export interface CrossEpoch {
  epoch: number;
  loss: number;
  trainAccuracy: number;
  /** text→image */
  dev: CrossDev;
  /** the weighted-fusion α that scored best on dev this epoch (text→image) */
  alpha: number;
  devImageToText?: CrossDev;
  alphaImageToText?: number;
  /** what chooses the epoch: the sum of the chosen directions' weighted R@1+R@5+R@10 */
  score: number;
  chooseOn?: HardDirection[];
  seconds: number;
}

/** Weighted-fusion weights tried on dev; the pack records the best one per direction for the engine. */
const ALPHAS = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8];

/** One direction's evaluation: its queries' ranks under every mode, then the best α by R@1+R@5+R@10. */
class DirectionRanks {
  private readonly ranks = new Map(['stage1', 'replace', 'rrf', ...ALPHAS.map((a) => `weighted ${a}`)].map((m) => [m, [] as number[]]));

  /** a query whose relevant candidates sit at `gtAt` (empty: outside k1, no reranking brings them back) */
  async add(gtAt: number[], stage1: number[], stage2: () => Promise<number[]>): Promise<void> {
    if (gtAt.length === 0) {
      for (const r of this.ranks.values()) r.push(Infinity);
      return;
    }
    const s2 = await stage2();
    // ordered as the engine orders them: by fused score, ties in stage-1 order; the first relevant one counts
    const rankOf = (fused: number[]) => Math.min(...gtAt.map((at) => 1 + fused.filter((v, i) => v > fused[at]! || (v === fused[at]! && i < at)).length));
    this.ranks.get('stage1')!.push(rankOf(stage1));
    this.ranks.get('replace')!.push(rankOf(s2));
    this.ranks.get('rrf')!.push(rankOf(fuse(stage1, s2, 'rrf')));
    for (const alpha of ALPHAS) this.ranks.get(`weighted ${alpha}`)!.push(rankOf(fuse(stage1, s2, 'weighted', { alpha })));
  }

  result(): CrossDev & { alpha: number; rsum: number } {
    const m = new Map([...this.ranks].map(([k, r]) => [k, rankMetrics(r)]));
    // chosen for what the engine returns by default: stage 1 fused with stage 2
    const alpha = chooseAlpha(ALPHAS.map((a) => ({ alpha: a, 'R@1': m.get(`weighted ${a}`)!['R@1'], rsum: recallSum(m.get(`weighted ${a}`)!) })));
    const weighted = m.get(`weighted ${alpha}`)!;
    return { stage1: m.get('stage1')!, replace: m.get('replace')!, weighted, rrf: m.get('rrf')!, alpha, rsum: recallSum(weighted) };
  }
}

export type CrossDevResult = Record<HardDirection, CrossDev & { alpha: number; rsum: number }>;

/**
 * Reranks each dev caption's stage-1 top k1 images (text→image) and each dev image's top k1
 * captions (image→text) with the cross-encoder, alone and fused (weighted: at each direction's
 * best α).
 */
export async function evaluateCross(heads: CrossHead[], s: Standardiser, dev: Prepared['dev']): Promise<CrossDevResult> {
  const regions = await headRegions(heads, regionInputs(dev.feats, s));
  const t2i = new DirectionRanks();
  for (const q of dev.queries) {
    const at = q.candidates.indexOf(q.gt);
    await t2i.add(at < 0 ? [] : [at], q.stage1, async () => Array.from((await crossScores(heads, [q.ids], q.candidates.map((c) => regions[c]!))).data));
  }
  const i2t = new DirectionRanks();
  for (const q of dev.imageQueries) {
    const gtAt = q.candidates.flatMap((c, i) => (q.gt.includes(c) ? [i] : []));
    await i2t.add(gtAt, q.stage1, async () => Array.from((await crossScores(heads, q.candidates.map((c) => dev.captionIds[c]!), [regions[q.image]!])).data));
  }
  return { textToImage: t2i.result(), imageToText: i2t.result() };
}

/** The sum of the directions' weighted-fusion R@1+R@5+R@10: what chooses an epoch. */
export const devScore = (r: CrossDevResult, chooseOn: readonly HardDirection[]): number => chooseOn.reduce((n, d) => n + r[d].rsum, 0);

const colSums = (m: Mat) => {
  const s = new Float32Array(m.cols);
  for (let i = 0; i < m.rows; i++) for (let j = 0; j < m.cols; j++) s[j]! += m.data[i * m.cols + j]!;
  return s;
};

/** Loss and gradients of one batch: image u matches caption u, every other image is a negative. */
export async function batchStep(params: Params, config: CrossConfig, inputs: RegionInputs, captions: Int32Array[]) {
  const raw = await regionRows(params, config.dim, inputs);
  const R = normalizeRows(raw);
  const tokRaw = stackTokens(params, config.dim, captions);
  const T = normalizeRows(tokRaw.T);
  const tok: TokenRows = { ...tokRaw, T: T.y };
  const { S, cache } = await attentionScores(tok, R.y, REGIONS, config.lambda);
  const { loss, dSim, dLogScale, accuracy } = contrastive(S, params.get('logScale')![0]!);
  const { dT, dR } = await attentionBackward(dSim, cache, tok, R.y, REGIONS, config.lambda);
  const dTokRaw = normalizeRowsBackward(dT, T.y, T.norms);
  const dRaw = normalizeRowsBackward(dR, R.y, R.norms);
  const dTable = new Float32Array(params.get('tokens')!.length);
  let r = 0;
  for (const ids of captions) for (const id of ids) {
    for (let k = 0; k < config.dim; k++) dTable[id * config.dim + k]! += dTokRaw.data[r * config.dim + k]!;
    r++;
  }
  // raw rows = [cells · W_cell + b_cell (16 per image); global · W_global + b_global]
  const u = captions.length;
  // the head's own global inputs: the first globalDim of a wider standardiser's, as regionRows reads them
  const global = globalInputs(inputs, u, globalDim(config));
  const dCells = mat(u * CELLS, config.dim);
  const dGlobal = mat(u, config.dim);
  for (let i = 0; i < u; i++) {
    dCells.data.set(dRaw.data.subarray(i * REGIONS * config.dim, (i * REGIONS + CELLS) * config.dim), i * CELLS * config.dim);
    dGlobal.data.set(dRaw.data.subarray((i * REGIONS + CELLS) * config.dim, (i + 1) * REGIONS * config.dim), i * config.dim);
  }
  const grads: Params = new Map([
    ['tokens', dTable],
    ['cell.W', (await matmul(mat(u * CELLS, BACKBONE_DIM, inputs.cells), dCells, true)).data],
    ['cell.b', colSums(dCells)],
    ['global.W', (await matmul(mat(u, globalDim(config), global), dGlobal, true)).data],
    ['global.b', colSums(dGlobal)],
    ['logScale', Float32Array.from([dLogScale])],
  ]);
  return { loss, accuracy, grads };
}

/** The command-line flag of a hyper-parameter, for messages (`pairMinCount` is `--pairs`; the others are named as search options are). */
const hyperFlag = (key: string): string => (key === 'pairMinCount' ? '--pairs' : flagOf(key));

export async function trainCross(opts: TrainCrossOptions): Promise<{ best?: CrossEpoch }> {
  const log = opts.onLog ?? (() => {});
  mkdirSync(opts.runDir, { recursive: true });
  const hasCheckpoint = existsSync(join(opts.runDir, 'checkpoint.json'));
  if (!opts.resume && hasCheckpoint) throw createError('BAD_ARGUMENT', opts.runDir, 'already holds a run: pass --resume, or another --run name');
  const hardDirections = opts.hardDirections ?? ['textToImage'];
  const chooseOn = opts.chooseOn ?? ['textToImage'];
  const global = opts.global ?? 'pooled';
  const hyper = { dim: opts.dim, lambda: opts.lambda, pairMinCount: opts.pairMinCount, global, initGlove: Boolean(opts.initGlove), batchSize: opts.batchSize, hard: opts.hard, hardPool: opts.hardPool, hardDirections: hardDirections.join(','), chooseOn: chooseOn.join(','), epochs: opts.epochs, lr: opts.lr, weightDecay: opts.weightDecay, featureDropout: opts.featureDropout, wordDropout: opts.wordDropout, patience: opts.patience, seed: opts.seed, evalK1: opts.evalK1 };
  if (opts.resume && existsSync(join(opts.runDir, 'params.json'))) {
    // a resumed run must be the same run: another vocabulary or width would not even fit the checkpoint
    const saved = (JSON.parse(readFileSync(join(opts.runDir, 'params.json'), 'utf8')) as { hyper: Record<string, unknown> }).hyper;
    for (const [k, v] of Object.entries(hyper)) {
      // a run from before a key existed ran with that key's default
      const was = k in saved ? saved[k] : { hardDirections: 'textToImage', chooseOn: 'textToImage', global: 'pooled', initGlove: false }[k];
      if (was !== undefined && was !== v) throw createError('BAD_ARGUMENT', hyperFlag(k), `is ${v} but the run being resumed used ${String(was)}`);
    }
  }
  // checked before minutes of feature extraction and mining, not after
  if (needsMobilenet(global) && !(await packHasMobilenet(opts.pack))) throw createError('BAD_ARGUMENT', '--global', `${global} needs a pack whose backbone has MobileNetV2 (${opts.pack}'s has not)`);
  const data = await prepare({ ...opts, hardDirections });
  const config: CrossConfig = { vocabSize: data.vocab.size, dim: opts.dim, lambda: opts.lambda, global };
  const std = computeStandardiser(data.train.feats, global);
  let params = initCross(config, opts.seed);
  if (opts.initGlove && !(opts.resume && hasCheckpoint)) {
    const { table, found } = await gloveTokens(data.vocab.tokens, config.dim, opts.seed);
    params.set('tokens', table);
    log(`token rows from GloVe: ${found} of ${data.vocab.size}`);
  }
  let adam: AdamWState = adamwInit(params);
  let state = { epoch: 0, best: -1, bestEpoch: 0, bad: 0, adamStep: 0 };
  if (opts.resume && hasCheckpoint) {
    state = JSON.parse(readFileSync(join(opts.runDir, 'checkpoint.json'), 'utf8')) as typeof state;
    ({ params, adam } = await loadCheckpoint(join(opts.runDir, 'checkpoint.bin'), state.adamStep));
    log(`resumed after epoch ${state.epoch}`);
    const saved = JSON.parse(readFileSync(join(opts.runDir, 'params.json'), 'utf8')) as { biEncoderId?: string };
    if (saved.biEncoderId && saved.biEncoderId !== data.biEncoderId) log(`warning: the run mined its hard negatives with ${saved.biEncoderId}, now ${data.biEncoderId}: the pack's bi-encoder changed`);
  } else {
    await writeJson(join(opts.runDir, 'params.json'), {
      kind: 'cross-encoder',
      hyper,
      config,
      data: { path: opts.data, train: 'train', dev: 'dev (every caption, reranking the bi-encoder top k1)' },
      biEncoder: opts.pack,
      biEncoderId: data.biEncoderId,
      command: opts.command,
      startedAt: new Date().toISOString(),
    });
    await saveTensors(join(opts.runDir, 'standardiser.bin'), new Map(Object.entries(std)));
    await writeJson(join(opts.runDir, 'vocab.json'), data.vocab.tokens);
  }
  await opts.tracker?.started();
  const { train } = data;
  const captionsOf: number[][] = train.feats.map(() => []);
  train.captionImage.forEach((img, c) => captionsOf[img]!.push(c));
  const decay = (name: string) => name.endsWith('.W') || name === 'tokens';
  // an epoch is five passes over the images, one caption each: every caption once on average
  const perEpoch = 5 * Math.ceil(train.feats.length / (opts.batchSize / (1 + opts.hard)));
  const totalSteps = opts.epochs * perEpoch;

  for (let epoch = state.epoch + 1; epoch <= opts.epochs; epoch++) {
    const started = performance.now();
    const rand = seeded(opts.seed * 7919 + epoch);
    let lossSum = 0;
    let accSum = 0;
    let steps = 0;
    for (let pass = 0; pass < 5; pass++) {
      for (const batch of hardBatches(train, captionsOf, opts.batchSize, opts.hard, rand, hardDirections)) {
        const captions = batch.map(({ image, caption }) => {
          const caps = captionsOf[image]!;
          return dropWords(train.ids[caption ?? caps[Math.floor(rand() * caps.length)]!]!, opts.wordDropout, rand);
        });
        const inputs = regionInputs(batch.map((b) => train.feats[b.image]!), std);
        dropFeatures(inputs.cells, opts.featureDropout, rand);
        dropFeatures(inputs.pooled, opts.featureDropout, rand);
        const { loss, accuracy, grads } = await batchStep(params, config, inputs, captions);
        adamwStep(params, grads, adam, { lr: opts.lr, weightDecay: opts.weightDecay, decay }, warmupCosine(adam.step, totalSteps, opts.lr, 0.03));
        const ls = params.get('logScale')!;
        ls[0] = Math.min(ls[0]!, MAX_LOG_SCALE);
        lossSum += loss;
        accSum += accuracy;
        steps++;
      }
    }
    const dev = await evaluateCross([{ config, params }], std, data.dev);
    const score = devScore(dev, chooseOn);
    const only = ({ stage1, replace, weighted, rrf }: CrossDev): CrossDev => ({ stage1, replace, weighted, rrf });
    const m: CrossEpoch = {
      epoch,
      loss: lossSum / steps,
      trainAccuracy: accSum / steps,
      dev: only(dev.textToImage),
      alpha: dev.textToImage.alpha,
      devImageToText: only(dev.imageToText),
      alphaImageToText: dev.imageToText.alpha,
      score,
      chooseOn: [...chooseOn],
      seconds: (performance.now() - started) / 1000,
    };
    await appendFile(join(opts.runDir, 'metrics.jsonl'), `${JSON.stringify(m)}\n`);
    await opts.tracker?.epoch(m);
    const improved = score > state.best;
    if (improved) {
      state.best = score;
      state.bestEpoch = epoch;
      state.bad = 0;
      await saveTensors(join(opts.runDir, 'best.bin'), params);
    } else state.bad++;
    state.epoch = epoch;
    state.adamStep = adam.step;
    await saveCheckpoint(join(opts.runDir, 'checkpoint.bin'), params, adam);
    await writeJson(join(opts.runDir, 'checkpoint.json'), state);
    const f = (r: RankMetrics) => `${r['R@1'].toFixed(1)}/${r['R@5'].toFixed(1)}/${r['R@10'].toFixed(1)}`;
    const line = (d: CrossDev & { alpha: number }) => `stage1 ${f(d.stage1)} replace ${f(d.replace)} weighted (α ${d.alpha}) ${f(d.weighted)} rrf ${f(d.rrf)}`;
    log(`epoch ${epoch}: loss ${m.loss.toFixed(3)} acc ${(100 * m.trainAccuracy).toFixed(1)}% | dev R@1/5/10 t→i ${line(dev.textToImage)} | i→t ${line(dev.imageToText)} | score (${chooseOn.join('+')}) ${score.toFixed(2)}${improved ? ' *' : ''} | ${m.seconds.toFixed(1)} s`);
    if (state.bad >= opts.patience) {
      log(`early stop: no dev improvement for ${opts.patience} epochs`);
      break;
    }
  }
  const lines = readFileSync(join(opts.runDir, 'metrics.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as CrossEpoch);
  const best = lines.find((l) => l.epoch === state.bestEpoch);
  await writeJson(join(opts.runDir, 'summary.json'), { bestEpoch: state.bestEpoch, bestDev: best?.dev, alpha: best?.alpha, bestDevImageToText: best?.devImageToText, alphaImageToText: best?.alphaImageToText, chooseOn: chooseOn.join(','), epochsRun: state.epoch, finishedAt: new Date().toISOString() });
  return { best };
}
