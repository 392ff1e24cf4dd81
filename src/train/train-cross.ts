/**
 * Trains the starter cross-encoder on Flickr8k train with hard negatives mined by the starter
 * bi-encoder (the images it ranks highest for a caption that are not the caption's own, as
 * ALBEF/BLIP mine them), with a listwise softmax loss over [positive, negatives]. Chosen on
 * dev by reranking the bi-encoder's top-k1 for one caption per dev image.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readFlickr8k } from '../data/readers/flickr8k.js';
import type { RetrievalDataset } from '../data/dataset.js';
import { createError } from '../errors.js';
import { rankMetrics, type RankMetrics } from '../eval/metrics.js';
import { TopK } from '../index/top-k.js';
import { BACKBONE_DIM } from '../models/starter/backbone.js';
import { POOLED_DIM, type BackboneFeatures } from '../models/starter/backbone-runner.js';
import { StarterEncoder } from '../models/starter/starter-encoder.js';
import { Vocabulary } from '../models/starter/vocab.js';
import { resolveModelSource } from '../models/model-source.js';
import { fuse } from '../search/fusion.js';
import { adamwInit, adamwStep, type AdamWState } from './adamw.js';
import { CELLS, computeStandardiser, initCross, projectRegions, regionInputs, tokenVectors, type CrossConfig, type Standardiser } from './cross-encoder-model.js';
import { listwiseLoss, pairScore } from './cross-attention.js';
import { seeded } from './dual-encoder.js';
import type { Params } from './layers.js';
import { mat, matmul } from './matmul.js';
import { writeJson } from './runs.js';
import { shuffle, warmupCosine } from './schedule.js';
import { ensureBackbone, splitFeatures } from './starter-features.js';
import { loadTensors, saveTensors } from './tensor-file.js';
import { appendFile } from 'node:fs/promises';

export interface TrainCrossOptions {
  data: string;
  pack: string;
  runDir: string;
  cacheDir: string;
  dim: number;
  lambda: number;
  batchSize: number;
  negatives: number;
  /** add the bi-encoder's cosine to the score with a learned weight (else stage 2 is attention alone) */
  biFeature: boolean;
  /** how many of the negatives come from the bi-encoder's hard pool; the rest are random images */
  hard: number;
  hardPool: number;
  epochs: number;
  lr: number;
  weightDecay: number;
  patience: number;
  seed: number;
  evalK1: number;
  resume?: boolean;
  command: string;
  onLog?: (line: string) => void;
}

export interface CrossEpoch {
  epoch: number;
  loss: number;
  dev: { stage1: RankMetrics; replace: RankMetrics; weighted: RankMetrics; rrf: RankMetrics };
  score: number;
  seconds: number;
}

const rows = (v: Float32Array[], d: number) => {
  const out = new Float32Array(v.length * d);
  v.forEach((x, i) => out.set(x, i * d));
  return out;
};

/** For each query row, the top k corpus rows by inner product (exclusions skipped), via Gemm in chunks. */
async function topRows(q: Float32Array, nq: number, c: Float32Array, nc: number, d: number, k: number, exclude?: (qi: number, ci: number) => boolean) {
  const out: { rows: number[]; scores: number[] }[] = [];
  for (let s = 0; s < nq; s += 512) {
    const n = Math.min(512, nq - s);
    const sims = await matmul(mat(n, d, q.subarray(s * d, (s + n) * d)), mat(nc, d, c), false, true);
    for (let i = 0; i < n; i++) {
      const heap = new TopK(k);
      for (let j = 0; j < nc; j++) if (!exclude?.(s + i, j)) heap.push(sims.data[i * nc + j]!, j);
      const sorted = heap.sorted();
      out.push({ rows: sorted.map((x) => x.row), scores: sorted.map((x) => x.score) });
    }
  }
  return out;
}

interface Prepared {
  /** the bi-encoder's embedding of each vocabulary word alone (V × bi dim): the token table's frozen basis */
  words: { data: Float32Array; dim: number };
  train: { ds: RetrievalDataset; feats: BackboneFeatures[]; ids: Int32Array[]; captionImage: number[]; hard: Int32Array[]; textEmb: Float32Array[]; imageEmb: Float32Array[] };
  dev: { feats: BackboneFeatures[]; queries: { ids: Int32Array; gt: number; candidates: number[]; stage1: number[] }[] };
  vocab: Vocabulary;
}

export async function prepare(opts: TrainCrossOptions): Promise<Prepared> {
  const log = opts.onLog ?? (() => {});
  const pack = resolveModelSource(opts.pack).location;
  const bi = await StarterEncoder.load(resolveModelSource(pack));
  const vocab = new Vocabulary(JSON.parse(readFileSync(join(pack, 'vocab.json'), 'utf8')) as string[]);
  const backbone = join(pack, 'backbone.onnx');
  await ensureBackbone(backbone, opts.cacheDir);
  const load = async (split: string) => {
    const ds = await readFlickr8k(opts.data, split);
    const feats = await splitFeatures(ds, backbone, opts.cacheDir);
    const index = new Map(ds.images.map((img, i) => [img.id, i]));
    const captionImage = ds.captions.map((c) => index.get(c.imageId)!);
    const kind = bi.manifest.features ?? 'pooled';
    const { featureVector } = await import('../models/starter/backbone-runner.js');
    const imageEmb = await bi.embedFeatures(feats.map((f) => featureVector(f, kind)));
    const textEmb = await bi.encodeTexts(ds.captions.map((c) => c.text));
    return { ds, feats, captionImage, imageEmb, textEmb };
  };
  const train = await load('train');
  const dev = await load('dev');
  const d = bi.dim;
  log(`mining ${opts.hardPool} hard negatives for ${train.ds.captions.length} train captions with ${bi.id}`);
  const hard = await topRows(rows(train.textEmb, d), train.textEmb.length, rows(train.imageEmb, d), train.imageEmb.length, d, opts.hardPool, (qi, ci) => train.captionImage[qi] === ci);
  // dev: the first caption of every image, reranking the bi-encoder's top k1 of all dev images
  const firstCaption = new Map<number, number>();
  dev.captionImage.forEach((img, c) => firstCaption.has(img) || firstCaption.set(img, c));
  const qs = [...firstCaption.values()];
  const qRows = rows(qs.map((c) => dev.textEmb[c]!), d);
  const top = await topRows(qRows, qs.length, rows(dev.imageEmb, d), dev.imageEmb.length, d, opts.evalK1);
  const words = await bi.encodeTexts(vocab.tokens);
  await bi.dispose();
  return {
    vocab,
    words: { data: rows(words, d), dim: d },
    train: {
      ds: train.ds,
      feats: train.feats,
      ids: train.ds.captions.map((c) => vocab.encode(c.text)),
      captionImage: train.captionImage,
      hard: hard.map((h) => Int32Array.from(h.rows)),
      textEmb: train.textEmb,
      imageEmb: train.imageEmb,
    },
    dev: {
      feats: dev.feats,
      queries: qs.map((c, i) => ({ ids: vocab.encode(dev.ds.captions[c]!.text), gt: dev.captionImage[c]!, candidates: top[i]!.rows, stage1: top[i]!.scores })),
    },
  };
}

export async function crossScores(params: Params, config: CrossConfig, s: Standardiser, ids: Int32Array, feats: BackboneFeatures[]): Promise<number[]> {
  const regions = await projectRegions(params, config.dim, regionInputs(feats, s));
  const tokens = tokenVectors(params, config.dim, ids);
  return regions.map((r) => pairScore({ tokens, n: ids.length, regions: r, m: CELLS + 1 }, config.dim, config.lambda).score);
}

async function evaluate(params: Params, config: CrossConfig, s: Standardiser, dev: Prepared['dev']): Promise<CrossEpoch['dev'] & { score: number }> {
  const ranks = { stage1: [] as number[], replace: [] as number[], weighted: [] as number[], rrf: [] as number[] };
  const regions = await projectRegions(params, config.dim, regionInputs(dev.feats, s));
  for (const q of dev.queries) {
    const tokens = tokenVectors(params, config.dim, q.ids);
    const w = params.get('bi.w')![0]!;
    const s2 = q.candidates.map((c, i) => pairScore({ tokens, n: q.ids.length, regions: regions[c]!, m: CELLS + 1 }, config.dim, config.lambda).score + w * q.stage1[i]!);
    const at = q.candidates.indexOf(q.gt);
    for (const mode of ['stage1', 'replace', 'weighted', 'rrf'] as const) {
      if (at < 0) {
        ranks[mode].push(Infinity); // outside k1: no reranking can bring it back
        continue;
      }
      const fused = mode === 'stage1' ? q.stage1 : fuse(q.stage1, s2, mode);
      ranks[mode].push(1 + fused.filter((v, i) => i !== at && v >= fused[at]!).length);
    }
  }
  const m = { stage1: rankMetrics(ranks.stage1), replace: rankMetrics(ranks.replace), weighted: rankMetrics(ranks.weighted), rrf: rankMetrics(ranks.rrf) };
  return { ...m, score: m.replace['R@1'] + m.replace['R@5'] + m.replace['R@10'] };
}

const dotRows = (a: Float32Array, b: Float32Array) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
};

/** The token table the scorer reads: each word's bi-encoder vector through the learned projection P. */
async function withTokens(params: Params, words: Prepared['words'], dim: number): Promise<Params> {
  const table = await matmul(mat(words.data.length / words.dim, words.dim, words.data), mat(words.dim, dim, params.get('word.P')!));
  return new Map([...params, ['tokens', table.data]]);
}

export async function trainCross(opts: TrainCrossOptions): Promise<{ best?: CrossEpoch }> {
  const log = opts.onLog ?? (() => {});
  mkdirSync(opts.runDir, { recursive: true });
  if (!opts.resume && existsSync(join(opts.runDir, 'checkpoint.json'))) throw createError('BAD_ARGUMENT', opts.runDir, 'already holds a run: pass --resume, or another --run name');
  const data = await prepare(opts);
  const config: CrossConfig = { vocabSize: data.vocab.size, dim: opts.dim, lambda: opts.lambda };
  const std = computeStandardiser(data.train.feats);
  let params = initCross(config, opts.seed);
  // tokens start from what the bi-encoder learned each word means (frozen), through a learned projection
  params.delete('tokens');
  const prand = seeded(opts.seed + 17);
  params.set('word.P', Float32Array.from({ length: data.words.dim * opts.dim }, () => (prand() * 2 - 1) * Math.sqrt(3 / data.words.dim)));
  // the bi-encoder's cosine enters the score with a learned weight: stage 2 starts from stage 1's
  // ranking and the attention learns what it gets wrong (20 ≈ the bi-encoder's own logit scale)
  params.set('bi.w', Float32Array.from([opts.biFeature ? 20 : 0]));
  let adam: AdamWState = adamwInit(params);
  let state = { epoch: 0, best: -1, bestEpoch: 0, bad: 0, adamStep: 0 };
  if (opts.resume && existsSync(join(opts.runDir, 'checkpoint.json'))) {
    state = JSON.parse(readFileSync(join(opts.runDir, 'checkpoint.json'), 'utf8')) as typeof state;
    const t = await loadTensors(join(opts.runDir, 'checkpoint.bin'));
    params = new Map([...t].filter(([k]) => !k.startsWith('adam.')));
    adam = { step: state.adamStep, m: new Map([...t].filter(([k]) => k.startsWith('adam.m.')).map(([k, v]) => [k.slice(7), v])), v: new Map([...t].filter(([k]) => k.startsWith('adam.v.')).map(([k, v]) => [k.slice(7), v])) };
    log(`resumed after epoch ${state.epoch}`);
  } else {
    await writeJson(join(opts.runDir, 'params.json'), {
      kind: 'cross-encoder',
      hyper: { biFeature: opts.biFeature, dim: opts.dim, lambda: opts.lambda, batchSize: opts.batchSize, negatives: opts.negatives, hard: opts.hard, hardPool: opts.hardPool, epochs: opts.epochs, lr: opts.lr, weightDecay: opts.weightDecay, patience: opts.patience, seed: opts.seed, evalK1: opts.evalK1 },
      config,
      data: { path: opts.data, train: 'train', dev: 'dev (first caption of each image)' },
      biEncoder: opts.pack,
      command: opts.command,
      startedAt: new Date().toISOString(),
    });
    await saveTensors(join(opts.runDir, 'standardiser.bin'), new Map(Object.entries(std)));
    const before = await evaluate(await withTokens(params, data.words, config.dim), config, std, data.dev);
    log(`dev before training: stage 1 R@1/5/10 ${before.stage1['R@1'].toFixed(1)}/${before.stage1['R@5'].toFixed(1)}/${before.stage1['R@10'].toFixed(1)}`);
  }
  const { train } = data;
  const captionsOf: number[][] = train.feats.map(() => []);
  train.captionImage.forEach((img, c) => captionsOf[img]!.push(c));
  const decay = (name: string) => name.endsWith('.W') || name === 'word.P';
  const totalSteps = opts.epochs * Math.ceil(train.feats.length / opts.batchSize);

  for (let epoch = state.epoch + 1; epoch <= opts.epochs; epoch++) {
    const started = performance.now();
    const rand = seeded(opts.seed * 7919 + epoch);
    const order = shuffle(train.feats.length, rand);
    let lossSum = 0;
    let steps = 0;
    for (let b = 0; b < order.length; b += opts.batchSize) {
      const queries = order.slice(b, b + opts.batchSize).map((img) => {
        const caps = captionsOf[img]!;
        const c = caps[Math.floor(rand() * caps.length)]!;
        const pool = Array.from(train.hard[c]!);
        const negs: number[] = [];
        while (negs.length < Math.min(opts.hard, opts.negatives) && pool.length > 0) negs.push(pool.splice(Math.floor(rand() * pool.length), 1)[0]!);
        // random negatives keep the easy distinctions in view; only hard ones stall learning early
        while (negs.length < opts.negatives) {
          const r = Math.floor(rand() * train.feats.length);
          if (r !== img && !negs.includes(r)) negs.push(r);
        }
        return { ids: train.ids[c]!, caption: c, images: [img, ...negs] };
      });
      const unique = [...new Set(queries.flatMap((q) => q.images))];
      const slot = new Map(unique.map((img, i) => [img, i]));
      const inputs = regionInputs(unique.map((i) => train.feats[i]!), std);
      const view = await withTokens(params, data.words, config.dim);
      const regions = await projectRegions(view, config.dim, inputs);
      const dRegions = unique.map(() => new Float32Array((CELLS + 1) * config.dim));
      const dTokens = new Float32Array(view.get('tokens')!.length);
      const w = params.get('bi.w')![0]!;
      let dW = 0;
      for (const q of queries) {
        const tokens = tokenVectors(view, config.dim, q.ids);
        const bi = q.images.map((img) => dotRows(train.textEmb[q.caption]!, train.imageEmb[img]!));
        const scores = q.images.map((img, j) => pairScore({ tokens, n: q.ids.length, regions: regions[slot.get(img)!]!, m: CELLS + 1 }, config.dim, config.lambda).score + w * bi[j]!);
        const { loss, dScores } = listwiseLoss(scores);
        dScores.forEach((g, j) => (dW += (g * bi[j]!) / queries.length));
        lossSum += loss / queries.length;
        q.images.forEach((img, j) => {
          const { grad } = pairScore({ tokens, n: q.ids.length, regions: regions[slot.get(img)!]!, m: CELLS + 1 }, config.dim, config.lambda, dScores[j]! / queries.length);
          const dr = dRegions[slot.get(img)!]!;
          for (let k = 0; k < dr.length; k++) dr[k]! += grad!.dRegions[k]!;
          q.ids.forEach((id, i) => {
            for (let k = 0; k < config.dim; k++) dTokens[id * config.dim + k]! += grad!.dTokens[i * config.dim + k]!;
          });
        });
      }
      // regions = [cells · W_cell + b_cell ; pooled · W_global + b_global]
      const u = unique.length;
      const dCells = mat(u * CELLS, config.dim);
      const dGlobal = mat(u, config.dim);
      dRegions.forEach((dr, i) => {
        dCells.data.set(dr.subarray(0, CELLS * config.dim), i * CELLS * config.dim);
        dGlobal.data.set(dr.subarray(CELLS * config.dim), i * config.dim);
      });
      const colSum = (m: { data: Float32Array; rows: number; cols: number }) => {
        const s = new Float32Array(m.cols);
        for (let i = 0; i < m.rows; i++) for (let j = 0; j < m.cols; j++) s[j]! += m.data[i * m.cols + j]!;
        return s;
      };
      const grads: Params = new Map([
        ['word.P', (await matmul(mat(data.words.data.length / data.words.dim, data.words.dim, data.words.data), mat(dTokens.length / config.dim, config.dim, dTokens), true)).data],
        ['cell.W', (await matmul(mat(u * CELLS, BACKBONE_DIM, inputs.cells), dCells, true)).data],
        ['cell.b', colSum(dCells)],
        ...(opts.biFeature ? [['bi.w', Float32Array.from([dW])] as [string, Float32Array]] : []),
        ['global.W', (await matmul(mat(u, POOLED_DIM, inputs.pooled), dGlobal, true)).data],
        ['global.b', colSum(dGlobal)],
      ]);
      const lr = warmupCosine(adam.step, totalSteps, opts.lr, 0.05);
      adamwStep(params, grads, adam, { lr: opts.lr, weightDecay: opts.weightDecay, decay }, lr);
      steps++;
    }
    const dev = await evaluate(await withTokens(params, data.words, config.dim), config, std, data.dev);
    const m: CrossEpoch = { epoch, loss: lossSum / steps, dev: { stage1: dev.stage1, replace: dev.replace, weighted: dev.weighted, rrf: dev.rrf }, score: dev.score, seconds: (performance.now() - started) / 1000 };
    await appendFile(join(opts.runDir, 'metrics.jsonl'), `${JSON.stringify(m)}\n`);
    const improved = dev.score > state.best;
    if (improved) {
      state.best = dev.score;
      state.bestEpoch = epoch;
      state.bad = 0;
      // the pack stores the token table itself: words · P, so stage 2 needs no bi-encoder
      const best = await withTokens(params, data.words, config.dim);
      best.delete('word.P');
      await saveTensors(join(opts.runDir, 'best.bin'), best);
    } else state.bad++;
    state.epoch = epoch;
    state.adamStep = adam.step;
    const ck: Params = new Map(params);
    for (const [k, v] of adam.m) ck.set(`adam.m.${k}`, v);
    for (const [k, v] of adam.v) ck.set(`adam.v.${k}`, v);
    await saveTensors(join(opts.runDir, 'checkpoint.bin'), ck);
    await writeJson(join(opts.runDir, 'checkpoint.json'), state);
    const f = (r: RankMetrics) => `${r['R@1'].toFixed(1)}/${r['R@5'].toFixed(1)}/${r['R@10'].toFixed(1)}`;
    log(`epoch ${epoch}: loss ${m.loss.toFixed(3)} | dev t→i R@1/5/10 stage1 ${f(dev.stage1)} replace ${f(dev.replace)} weighted ${f(dev.weighted)} rrf ${f(dev.rrf)}${improved ? ' *' : ''} | ${m.seconds.toFixed(1)} s`);
    if (state.bad >= opts.patience) {
      log(`early stop: no dev improvement for ${opts.patience} epochs`);
      break;
    }
  }
  const lines = readFileSync(join(opts.runDir, 'metrics.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as CrossEpoch);
  const best = lines.find((l) => l.epoch === state.bestEpoch);
  await writeJson(join(opts.runDir, 'summary.json'), { bestEpoch: state.bestEpoch, bestDev: best?.dev, epochsRun: state.epoch, finishedAt: new Date().toISOString() });
  return { best };
}
