/**
 * Gives a starter pack an open vocabulary: fits a ridge map from GloVe vectors to the pack's
 * trained word vectors on the words it knows, chooses λ (and whether GloVe rows are unit
 * length) by the cosine between predicted and trained vectors of held-out known words, and
 * writes the `count` most frequent GloVe words the pack does not know, with the map, into the
 * pack (open_vocab.json, open_vocab.bin, manifest.json; each written atomically).
 */
import { readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createError } from '../../errors.js';
import { readInitializersFile } from '../../onnx/reader.js';
import { weightsOf } from '../../models/starter/text-graph.js';
import { OPEN_VOCAB_TABLE, OPEN_VOCAB_WORDS, type OpenVocabManifest } from '../../models/starter/open-vocab.js';
import { saveTensors } from '../../models/tensor-file.js';
import { UNK } from '../../models/starter/vocab.js';
import { writeFileAtomic } from '../../util/atomic-write.js';
import { seeded } from '../../util/random.js';
import { shuffle } from '../schedule.js';
import { initDualEncoder } from '../dual-encoder.js';
import { readGlove, WINK_PACKAGE, type GloveTable } from './glove-reader.js';
import { applyRidge, fitRidge, meanRowCosine, type RidgeMap } from './ridge.js';

/** the words the starter tokenizer can produce (vocab.ts) */
const TOKEN = /^[a-z0-9]+$/;
export const LAMBDAS = [0.1, 1, 3, 10, 30, 100, 300];

export interface MapChoice {
  lambda: number;
  unit: boolean;
  /** mean cosine on the validation words, for every (unit, λ) tried */
  tried: { unit: boolean; lambda: number; cosine: number }[];
  fitWords: number;
  validationWords: number;
  map: RidgeMap;
}

const unitRows = (x: Float32Array, d: number): Float32Array => {
  const out = Float32Array.from(x);
  for (let i = 0; i < out.length; i += d) {
    let n = 0;
    for (let k = 0; k < d; k++) n += out[i + k]! ** 2;
    n = Math.sqrt(n) || 1;
    for (let k = 0; k < d; k++) out[i + k]! /= n;
  }
  return out;
};

/**
 * Fits the GloVe → word-vector map on the `tokens` (ids = positions in `embed`) that GloVe
 * has, choosing λ and unit-length inputs on a seeded 10% of them, then refitting on all.
 */
export function fitOpenVocabMap(tokens: string[], embed: Float32Array, wordDim: number, glove: GloveTable, seed = 1): MapChoice {
  const pairs = tokens.map((w, id) => ({ w, id })).filter(({ w }) => w !== UNK && glove.rows.has(w));
  const d = glove.dim;
  const gather = (ps: typeof pairs) => {
    const x = new Float32Array(ps.length * d);
    const y = new Float32Array(ps.length * wordDim);
    ps.forEach(({ w, id }, i) => {
      x.set(glove.rows.get(w)!.vector, i * d);
      y.set(embed.subarray(id * wordDim, (id + 1) * wordDim), i * wordDim);
    });
    return { x, y, n: ps.length };
  };
  const order = shuffle(pairs.length, seeded(seed)).map((i) => pairs[i]!);
  const nVal = Math.max(1, Math.floor(pairs.length / 10));
  const val = gather(order.slice(0, nVal));
  const fit = gather(order.slice(nVal));
  const tried: MapChoice['tried'] = [];
  for (const unit of [false, true]) {
    const fx = unit ? unitRows(fit.x, d) : fit.x;
    const vx = unit ? unitRows(val.x, d) : val.x;
    for (const lambda of LAMBDAS) {
      const map = fitRidge(fx, fit.y, fit.n, d, wordDim, lambda);
      tried.push({ unit, lambda, cosine: meanRowCosine(applyRidge(map, vx, val.n), val.y, wordDim) });
    }
  }
  const best = tried.reduce((a, b) => (b.cosine > a.cosine ? b : a));
  const all = gather(pairs);
  const map = fitRidge(best.unit ? unitRows(all.x, d) : all.x, all.y, all.n, d, wordDim, best.lambda);
  return { lambda: best.lambda, unit: best.unit, tried, fitWords: fit.n, validationWords: val.n, map };
}

/** The `count` most frequent GloVe words (tokenizer-shaped) that `known` lacks. */
export function openWords(glove: GloveTable, known: Set<string>, count: number): string[] {
  return [...glove.rows.values()]
    .filter((r) => TOKEN.test(r.word) && !known.has(r.word))
    .sort((a, b) => a.rank - b.rank)
    .slice(0, count)
    .map((r) => r.word);
}

/** GloVe rows of `words` (unit length if the map was fitted so), row after row. */
export function openRows(glove: GloveTable, words: string[], unit: boolean): Float32Array {
  const x = new Float32Array(words.length * glove.dim);
  words.forEach((w, i) => x.set(glove.rows.get(w)!.vector, i * glove.dim));
  return unit ? unitRows(x, glove.dim) : x;
}

/**
 * What the map predicts. `trained`: the trained word vector. `learned`: what training added to
 * it, trained − initial (the initial vectors are random, N(0, 1/wordDim) per component, and
 * reproducible from the run's seed): a new word gets the part GloVe can explain, without
 * the random start no map can predict, which otherwise dominates the fit (delta norms are
 * 0.2–0.5 against ~1 for the start).
 */
export type MapTarget = 'trained' | 'learned';

export interface BuildOptions {
  pack: string;
  count: number;
  glovePath: string;
  /** read once and reused (the held-out measurement builds several tables) */
  glove?: GloveTable;
  target?: MapTarget;
  /** multiplies the mapped vectors (a shrunk ridge prediction is shorter than a trained vector) */
  scale?: number;
  seed?: number;
  /** recorded in the manifest */
  command: string;
}

export interface BuildReport extends Omit<MapChoice, 'map'> {
  words: number;
  lastRank: number;
  bytes: number;
}

/** The trained vocabulary and word vectors of a starter pack, read from its text_model.onnx. */
export async function packWordVectors(pack: string): Promise<{ tokens: string[]; embed: Float32Array; wordDim: number; manifest: Record<string, unknown> }> {
  const manifest = JSON.parse(readFileSync(join(pack, 'manifest.json'), 'utf8')) as { text?: { vocabSize: number; wordDim: number } } & Record<string, unknown>;
  if (!manifest.text) throw createError('MODEL_UNSUPPORTED', pack, 'not a starter pack (no manifest.text)');
  const tokens = JSON.parse(readFileSync(join(pack, 'vocab.json'), 'utf8')) as string[];
  // weightsOf: a compact pack's word vectors are int8 rows and their scales
  const file = join(pack, 'text_model.onnx');
  const initializers = await readInitializersFile(file);
  let embed: Float32Array | undefined;
  try {
    embed = weightsOf(initializers).get('text.embed');
  } catch (error) {
    throw createError('MODEL_UNSUPPORTED', file, (error as Error).message);
  }
  if (!embed || embed.length !== tokens.length * manifest.text.wordDim) throw createError('MODEL_UNSUPPORTED', pack, 'text_model.onnx has no text.embed of vocab.json × wordDim');
  return { tokens, embed, wordDim: manifest.text.wordDim, manifest };
}

/** The initial word vectors of the run that trained `manifest`'s pack (initDualEncoder, its seed). */
function initialWordVectors(manifest: Record<string, unknown>, vocabSize: number, wordDim: number): Float32Array {
  const hyper = (manifest.training as { hyper?: { seed?: number; initGlove?: boolean } } | undefined)?.hyper;
  if (hyper?.seed === undefined) throw createError('MODEL_UNSUPPORTED', 'manifest.json', 'no training.hyper.seed: use --target trained');
  // started from GloVe (duo train --init-glove): the start is itself a map of GloVe, so predict the trained vectors
  if (hyper.initGlove) throw createError('MODEL_UNSUPPORTED', 'manifest.json', 'its word vectors started from GloVe: use --target trained');
  const seed = hyper.seed;
  return initDualEncoder({ imageDim: 1, vocabSize, wordDim, embedDim: 1, head: 'linear', hidden: 0 }, seed).params.get('text.embed')!;
}

export async function buildOpenVocab(o: BuildOptions): Promise<BuildReport> {
  const { tokens, embed, wordDim, manifest } = await packWordVectors(o.pack);
  const glove = o.glove ?? (await readGlove(o.glovePath, (w) => TOKEN.test(w)));
  const target = o.target ?? 'learned';
  let y = embed;
  if (target === 'learned') {
    const init = initialWordVectors(manifest, tokens.length, wordDim);
    y = embed.map((v, i) => v - init[i]!);
  }
  const choice = fitOpenVocabMap(tokens, y, wordDim, glove, o.seed ?? 1);
  const scale = o.scale ?? 1;
  if (scale !== 1) {
    choice.map.W.forEach((v, i, a) => (a[i] = v * scale));
    choice.map.b.forEach((v, i, a) => (a[i] = v * scale));
  }
  const words = openWords(glove, new Set(tokens), o.count);
  const lastRank = words.length > 0 ? glove.rows.get(words.at(-1)!)!.rank : 0;
  await writeFileAtomic(join(o.pack, OPEN_VOCAB_WORDS), `${JSON.stringify(words)}\n`);
  await saveTensors(
    join(o.pack, OPEN_VOCAB_TABLE),
    new Map([
      ['glove', openRows(glove, words, choice.unit)],
      ['W', choice.map.W],
      ['b', choice.map.b],
    ]),
    (name) => (name === 'glove' ? { q8: glove.dim } : 'f32'),
  );
  const entry: OpenVocabManifest = {
    words: OPEN_VOCAB_WORDS,
    table: OPEN_VOCAB_TABLE,
    count: words.length,
    gloveDim: glove.dim,
    source: `${WINK_PACKAGE}@${wink(o.glovePath)} (GloVe 6B 100-d, Pennington et al. 2014; PDDL): rows stored int8 with one float32 scale each`,
    limit: `the ${words.length} most frequent GloVe words (frequency rank up to ${lastRank}) of the tokenizer's form [a-z0-9]+ that the trained vocabulary lacks; any other unknown word is still dropped`,
    map: {
      kind: 'ridge regression, word vector = glove·W + b',
      target: target === 'learned' ? 'trained − initial word vectors (what training added)' : 'trained word vectors',
      scale,
      inputs: choice.unit ? 'unit-length GloVe rows' : 'GloVe rows as they are',
      lambda: choice.lambda,
      fitOn: `${choice.fitWords + choice.validationWords} trained words that GloVe has`,
      chosenOn: `cosine between predicted and trained vectors of a seeded 10% (${choice.validationWords} words)`,
      validationCosine: choice.tried.find((t) => t.unit === choice.unit && t.lambda === choice.lambda)!.cosine,
    },
    command: o.command,
  };
  await writeFileAtomic(join(o.pack, 'manifest.json'), `${JSON.stringify({ ...manifest, openVocabulary: entry }, null, 2)}\n`);
  const bytes = statSync(join(o.pack, OPEN_VOCAB_WORDS)).size + statSync(join(o.pack, OPEN_VOCAB_TABLE)).size;
  const { map: _map, ...rest } = choice;
  return { ...rest, words: words.length, lastRank, bytes };
}

function wink(glovePath: string): string {
  try {
    return (JSON.parse(readFileSync(join(dirname(glovePath), 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}
