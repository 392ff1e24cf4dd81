/**
 * Puts trained cross-encoder runs into a starter pack as one cross-encoder: each run becomes a
 * head (tensors `h<i>.*` in cross_encoder.bin), after the pack's own heads when they are kept
 * (`keepHeads`: the runs are added to the cross-encoder the pack has), the vocabulary is the
 * longest of theirs (the others must be its prefix: the same words, fewer or no word pairs),
 * and the weighted-fusion α is chosen on dev for the heads together, per direction
 * (text→image: `fusion.alpha`; image→text: `fusion.alphaImageToText`). The manifest records
 * every head's run, command and epoch, and the dev metrics of what was exported.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createError } from '../errors.js';
import { ALPHA_TIE_RULE } from '../eval/metrics.js';
import { needsMobilenet, packHasMobilenet } from '../models/starter/backbone-runner.js';
import type { CrossManifest } from '../models/starter/starter-cross-encoder.js';
import { GLOBAL_KINDS, globalDim, type CrossConfig, type CrossHead, type GlobalKind, type Standardiser } from '../models/starter/cross-scoring.js';
import { Vocabulary } from '../models/starter/vocab.js';
import { asStored, loadTensors, saveTensors, type Params, type Storage } from '../models/tensor-file.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { readRun } from './runs.js';
import { prepareDev } from './cross-data.js';
import { evaluateCross, type CrossDev } from './train-cross.js';

export interface ExportCrossOptions {
  runDirs: string[];
  pack: string;
  data: string;
  cacheDir: string;
  evalK1: number;
  /** keep the heads the pack's cross-encoder has and add the runs after them (else the runs replace them) */
  keepHeads?: boolean;
  /** the command line that asked for this export, recorded in the manifest */
  command?: string;
}

/** What a head is exported from: a run folder, or a head the pack already has. */
export interface HeadSource {
  /** a run folder, or `<pack>#h<i>` */
  dir: string;
  head: CrossHead;
  tokens: string[];
  std: Params;
  /** its manifest entry, less the shape (written again from `head.config`) */
  entry: Record<string, unknown>;
}

async function readHead(runDir: string): Promise<HeadSource> {
  const run = readRun(runDir);
  const state = run.summary ?? (existsSync(join(runDir, 'checkpoint.json')) ? (JSON.parse(readFileSync(join(runDir, 'checkpoint.json'), 'utf8')) as Record<string, unknown>) : undefined);
  if (!state || !existsSync(join(runDir, 'best.bin'))) throw createError('BAD_ARGUMENT', runDir, 'has no finished epoch (best.bin)');
  const hyper = run.params.hyper as { dim: number; lambda: number; global?: GlobalKind };
  if (hyper.global !== undefined && !GLOBAL_KINDS.includes(hyper.global)) throw createError('BAD_ARGUMENT', join(runDir, 'params.json'), `hyper.global must be one of ${GLOBAL_KINDS.join(', ')}, got ${JSON.stringify(hyper.global)}`);
  const params = await loadTensors(join(runDir, 'best.bin'));
  params.delete('logScale'); // a training-only temperature
  const tokens = JSON.parse(readFileSync(join(runDir, 'vocab.json'), 'utf8')) as string[];
  const head: CrossHead = { config: { vocabSize: tokens.length, dim: hyper.dim, lambda: hyper.lambda, ...(hyper.global ? { global: hyper.global } : {}) }, params };
  const std = await loadTensors(join(runDir, 'standardiser.bin'));
  const { biEncoderId } = run.params as { biEncoderId?: string };
  return { dir: run.dir, head, tokens, std, entry: { run: run.id, hyper: run.params.hyper, command: run.params.command, bestEpoch: state.bestEpoch as number, ...(biEncoderId ? { biEncoder: biEncoderId } : {}) } };
}

/** The heads a pack's cross-encoder has now (as stored: int8 token tables, fp16 weights, read back as float32). */
async function packHeads(pack: string): Promise<HeadSource[]> {
  const manifest = JSON.parse(readFileSync(join(pack, 'manifest.json'), 'utf8')) as { crossEncoder?: CrossManifest & { heads: Record<string, unknown>[] } };
  const m = manifest.crossEncoder;
  if (!m?.heads?.length) throw createError('BAD_ARGUMENT', pack, 'has no cross-encoder heads to keep');
  const tokens = JSON.parse(readFileSync(join(pack, m.vocabulary), 'utf8')) as string[];
  const t = await loadTensors(join(pack, m.file));
  const std: Params = new Map([...t].filter(([k]) => k.startsWith('std.')).map(([k, v]) => [k.slice('std.'.length), v]));
  return m.heads.map((h, i) => {
    const { dim, lambda, vocabSize, global, ...entry } = h as { dim: number; lambda: number; vocabSize: number; global?: GlobalKind };
    const params: Params = new Map([...t].filter(([k]) => k.startsWith(`h${i}.`)).map(([k, v]) => [k.slice(`h${i}.`.length), v]));
    return { dir: `${pack}#h${i}`, head: { config: { vocabSize, dim, lambda, ...(global ? { global } : {}) }, params }, tokens: tokens.slice(0, vocabSize), std, entry };
  });
}

/**
 * The heads to export, the pack's first when kept, checked to share one vocabulary (`longest`'s)
 * and one standardiser (`std`: the widest, a head whose global region reads MobileNetV2 has the
 * pooled vector's statistics first; the others must equal its start).
 */
export async function collectHeads(opts: Pick<ExportCrossOptions, 'runDirs' | 'pack' | 'keepHeads'>): Promise<{ heads: HeadSource[]; longest: HeadSource; std: Params }> {
  if (opts.runDirs.length === 0) throw createError('BAD_ARGUMENT', 'runs', 'name at least one cross-encoder run');
  const heads = [...(opts.keepHeads ? await packHeads(opts.pack) : []), ...(await Promise.all(opts.runDirs.map(readHead)))];
  const longest = heads.reduce((a, b) => (b.tokens.length > a.tokens.length ? b : a));
  const widest = heads.reduce((a, b) => ((b.std.get('pooledMean')?.length ?? 0) > (a.std.get('pooledMean')?.length ?? 0) ? b : a));
  for (const h of heads) {
    if (h.tokens.some((t, i) => longest.tokens[i] !== t)) throw createError('BAD_ARGUMENT', h.dir, `its vocabulary is not a prefix of ${longest.dir}'s: the heads cannot share one`);
    for (const [k, v] of h.std) {
      const ref = widest.std.get(k);
      if (!ref || v.length > ref.length || v.some((x, i) => Math.abs(x - ref[i]!) > 1e-5)) throw createError('BAD_ARGUMENT', h.dir, `standardiser ${k} differs from ${widest.dir}'s: the runs saw other features`);
    }
    const width = h.head.params.get('global.W')!.length / h.head.config.dim;
    if (width !== globalDim(h.head.config)) throw createError('BAD_ARGUMENT', h.dir, `its global.W has ${width} inputs, not the ${globalDim(h.head.config)} of global "${h.head.config.global ?? 'pooled'}"`);
  }
  return { heads, longest, std: widest.std };
}

/**
 * How a pack stores a head's tensor: token tables as int8 rows (they are normalised before use),
 * a global projection that reads MobileNetV2 as int8 rows too (2,352 inputs: 1.2 MB a head in
 * float16, 0.6 MB so), the other weights as float16.
 */
export function storedAs(config: CrossConfig, name: string): Storage {
  return name === 'tokens' || (name === 'global.W' && needsMobilenet(config.global ?? 'pooled')) ? { q8: config.dim } : 'f16';
}

export interface ExportCrossResult {
  alpha: number;
  alphaImageToText: number;
  /** text→image */
  dev: CrossDev;
  devImageToText: CrossDev;
  heads: string[];
}

export async function exportCross(opts: ExportCrossOptions): Promise<ExportCrossResult> {
  const { heads, longest, std: stdParams } = await collectHeads(opts);
  const std = Object.fromEntries(stdParams) as unknown as Standardiser;
  // dev measures the model as stored, not as trained
  const storage = (i: number) => (name: string): Storage => storedAs(heads[i]!.head.config, name);
  const stored = heads.map((h, i) => ({ config: h.head.config, params: new Map([...h.head.params].map(([k, v]) => [k, asStored(v, storage(i)(k))])) }));
  const mobilenetHead = heads.find((h) => needsMobilenet(h.head.config.global ?? 'pooled'));
  if (mobilenetHead && !(await packHasMobilenet(opts.pack))) throw createError('BAD_ARGUMENT', '--pack', `${opts.pack}'s backbone has no MobileNetV2 branch, which ${mobilenetHead.dir} reads`);
  const dev = await prepareDev({ data: opts.data, pack: opts.pack, cacheDir: opts.cacheDir, evalK1: opts.evalK1 }, new Vocabulary(longest.tokens));
  const result = await evaluateCross(stored, std, dev);

  const tensors: Params = new Map([...stdParams].map(([k, v]) => [`std.${k}`, v]));
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
  const only = ({ stage1, replace, weighted, rrf }: CrossDev): CrossDev => ({ stage1, replace, weighted, rrf });
  const section: CrossManifest & Record<string, unknown> = {
    file: 'cross_encoder.bin',
    vocabulary: 'cross_vocab.json',
    storage: heads.some((h) => needsMobilenet(h.head.config.global ?? 'pooled')) ? 'token tables and MobileNetV2 global projections int8 per row, other weights float16, standardiser float32' : 'token tables int8 per row, weights float16, standardiser float32',
    regions: '4x4 grid cells + a global vector (each head\'s `global`: pooled unless said), projected to each head\'s dim, unit length; stored fp16 beside an index by duo index --reranker',
    ...(opts.command ? { exportedBy: opts.command } : {}),
    score: heads.length > 1 ? 'mean of the heads\' attention scores' : 'attention score',
    heads: heads.map((h) => ({ ...h.head.config, ...h.entry })),
    // weighted fusion with stage 1 at the α per direction that scored best on dev: the engine's default for this model
    fusion: {
      mode: 'weighted',
      alpha: result.textToImage.alpha,
      alphaImageToText: result.imageToText.alpha,
      chosen: { by: `duo export-cross: per direction, the α of 0.3–0.8 with the best weighted R@1 + R@5 + R@10 on dev (${ALPHA_TIE_RULE})`, k1: opts.evalK1, date: new Date().toISOString() },
    },
    training: {
      data: 'Flickr8k train; in-batch negatives, batches built around hard negatives mined by this pack\'s bi-encoder',
      chosenOn: `dev (every caption and every image, reranking the bi-encoder top ${opts.evalK1}, fused with stage 1)`,
    },
    // text→image as before, image→text beside it
    devMetrics: { ...only(result.textToImage), imageToText: only(result.imageToText) },
  };
  manifest.crossEncoder = section;
  await writeFileAtomic(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
  return { alpha: result.textToImage.alpha, alphaImageToText: result.imageToText.alpha, dev: only(result.textToImage), devImageToText: only(result.imageToText), heads: heads.map((h) => h.dir) };
}
