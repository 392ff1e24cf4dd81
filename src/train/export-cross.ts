/**
 * Puts trained cross-encoder runs into a starter pack as one cross-encoder: each run becomes a
 * head (tensors `h<i>.*` in cross_encoder.bin), the vocabulary is the longest of theirs (the
 * others must be its prefix: the same words, fewer or no word pairs), and the weighted-fusion α
 * is chosen on dev for the heads together. The manifest records every head's run, command and
 * epoch, and the dev metrics of what was exported.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createError } from '../errors.js';
import type { RankMetrics } from '../eval/metrics.js';
import type { CrossManifest } from '../models/starter/starter-cross-encoder.js';
import type { CrossHead, Standardiser } from '../models/starter/cross-scoring.js';
import { Vocabulary } from '../models/starter/vocab.js';
import { asStored, loadTensors, saveTensors, type Params, type Storage } from '../models/tensor-file.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { readRun } from './runs.js';
import { prepareDev } from './cross-data.js';
import { evaluateCross } from './train-cross.js';

export interface ExportCrossOptions {
  runDirs: string[];
  pack: string;
  data: string;
  cacheDir: string;
  evalK1: number;
  /** the command line that asked for this export, recorded in the manifest */
  command?: string;
}

async function readHead(runDir: string) {
  const run = readRun(runDir);
  const state = run.summary ?? (existsSync(join(runDir, 'checkpoint.json')) ? (JSON.parse(readFileSync(join(runDir, 'checkpoint.json'), 'utf8')) as Record<string, unknown>) : undefined);
  if (!state || !existsSync(join(runDir, 'best.bin'))) throw createError('BAD_ARGUMENT', runDir, 'has no finished epoch (best.bin)');
  const hyper = run.params.hyper as { dim: number; lambda: number };
  const params = await loadTensors(join(runDir, 'best.bin'));
  params.delete('logScale'); // a training-only temperature
  const tokens = JSON.parse(readFileSync(join(runDir, 'vocab.json'), 'utf8')) as string[];
  const head: CrossHead = { config: { vocabSize: tokens.length, dim: hyper.dim, lambda: hyper.lambda }, params };
  return { run, head, tokens, std: await loadTensors(join(runDir, 'standardiser.bin')), bestEpoch: state.bestEpoch as number };
}

export async function exportCross(opts: ExportCrossOptions): Promise<{ alpha: number; dev: { stage1: RankMetrics; replace: RankMetrics; weighted: RankMetrics; rrf: RankMetrics } }> {
  if (opts.runDirs.length === 0) throw createError('BAD_ARGUMENT', 'runs', 'name at least one cross-encoder run');
  const heads = await Promise.all(opts.runDirs.map(readHead));
  const longest = heads.reduce((a, b) => (b.tokens.length > a.tokens.length ? b : a));
  for (const h of heads) {
    if (h.tokens.some((t, i) => longest.tokens[i] !== t)) throw createError('BAD_ARGUMENT', h.run.dir, `its vocabulary is not a prefix of ${longest.run.dir}'s: the heads cannot share one`);
    for (const [k, v] of h.std) {
      const ref = heads[0]!.std.get(k);
      if (!ref || ref.some((x, i) => Math.abs(x - v[i]!) > 1e-5)) throw createError('BAD_ARGUMENT', h.run.dir, `standardiser ${k} differs from ${heads[0]!.run.dir}'s: the runs saw other features`);
    }
  }
  const std = Object.fromEntries(heads[0]!.std) as unknown as Standardiser;
  // the pack stores token tables as int8 rows (they are normalised before use) and weights as
  // float16; dev measures the model as stored, not as trained
  const storage = (i: number) => (name: string): Storage => (name === 'tokens' ? { q8: heads[i]!.head.config.dim } : 'f16');
  const stored = heads.map((h, i) => ({ config: h.head.config, params: new Map([...h.head.params].map(([k, v]) => [k, asStored(v, storage(i)(k))])) }));
  const dev = await prepareDev({ data: opts.data, pack: opts.pack, cacheDir: opts.cacheDir, evalK1: opts.evalK1 }, new Vocabulary(longest.tokens));
  const result = await evaluateCross(stored, std, dev);

  const tensors: Params = new Map([...heads[0]!.std].map(([k, v]) => [`std.${k}`, v]));
  heads.forEach((h, i) => {
    for (const [k, v] of h.head.params) tensors.set(`h${i}.${k}`, v);
  });
  await saveTensors(join(opts.pack, 'cross_encoder.bin'), tensors, (name) => {
    const m = /^h(\d+)\.(.+)$/.exec(name);
    return m ? storage(Number(m[1]))(m[2]!) : 'f32';
  });
  await writeFileAtomic(join(opts.pack, 'cross_vocab.json'), `${JSON.stringify(longest.tokens)}\n`);
  const manifestPath = join(opts.pack, 'manifest.json');
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as Record<string, unknown>;
  const section: CrossManifest & Record<string, unknown> = {
    file: 'cross_encoder.bin',
    vocabulary: 'cross_vocab.json',
    storage: 'token tables int8 per row, weights float16, standardiser float32',
    regions: '4x4 grid cells + pooled vector, projected to each head\'s dim, unit length; stored fp16 beside an index by duo index --reranker',
    ...(opts.command ? { exportedBy: opts.command } : {}),
    score: heads.length > 1 ? 'mean of the heads\' attention scores' : 'attention score',
    heads: heads.map((h) => ({ ...h.head.config, run: h.run.id, hyper: h.run.params.hyper, command: h.run.params.command, bestEpoch: h.bestEpoch })),
    // weighted fusion with stage 1 at the α that scored best on dev: the engine's default for this model
    fusion: { mode: 'weighted', alpha: result.alpha },
    training: {
      data: 'Flickr8k train; in-batch negatives, batches built around hard negatives mined by this pack\'s bi-encoder',
      chosenOn: `dev (every caption, reranking the bi-encoder top ${opts.evalK1}, fused with stage 1)`,
    },
    devMetrics: { stage1: result.stage1, replace: result.replace, weighted: result.weighted, rrf: result.rrf },
  };
  manifest.crossEncoder = section;
  await writeFileAtomic(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
  return { alpha: result.alpha, dev: section.devMetrics as never };
}
