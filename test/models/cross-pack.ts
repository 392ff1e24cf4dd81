/** A starter pack with a small random cross-encoder, for the tests of the starter models. */
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultModelPath } from '../../src/models/load-encoder.js';
import { Vocabulary } from '../../src/models/starter/vocab.js';
import type { CrossConfig } from '../../src/models/starter/cross-scoring.js';
import { saveTensors, type Params } from '../../src/models/tensor-file.js';
import { computeStandardiser, initCross } from '../../src/train/cross-init.js';
import { tempDir } from '../helpers.js';

/**
 * A copy of the shipped pack with a randomly initialised cross-encoder of two heads: the
 * second reads word pairs, the first only the words (a prefix of the shared vocabulary).
 */
export async function packWithCross(): Promise<string> {
  const dir = join(tempDir(), 'pack');
  // the bi-encoder as shipped (its member folders too); the cross-encoder's files are written below
  cpSync(defaultModelPath(), dir, { recursive: true, filter: (src) => !/cross_/.test(src) });
  const words = new Vocabulary(JSON.parse(readFileSync(join(dir, 'vocab.json'), 'utf8')) as string[]);
  const vocab = words.withPairs(['a red shirt', 'a red shirt', 'two black dogs', 'two black dogs'], 2);
  writeFileSync(join(dir, 'cross_vocab.json'), JSON.stringify(vocab.tokens));
  const heads = [{ vocabSize: words.size, dim: 16, lambda: 4 }, { vocabSize: vocab.size, dim: 8, lambda: 9 }];
  const tensors = new Map<string, Float32Array>();
  heads.forEach((h, i) => {
    for (const [k, v] of initCross(h, i + 1)) tensors.set(`h${i}.${k}`, v);
  });
  const fake = { pooled: new Float32Array(560).map((_, i) => i % 7), grid: new Float32Array(480 * 16).map((_, i) => i % 5) };
  for (const [k, v] of Object.entries(computeStandardiser([fake, { pooled: fake.pooled.map((x) => x + 1), grid: fake.grid.map((x) => x * 2) }]))) tensors.set(`std.${k}`, v);
  await saveTensors(join(dir, 'cross_encoder.bin'), tensors);
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ ...manifest, crossEncoder: { file: 'cross_encoder.bin', vocabulary: 'cross_vocab.json', heads, fusion: { mode: 'weighted', alpha: 0.7 } } }));
  return dir;
}

/** A finished cross-encoder run folder (best epoch 4): a seeded head of `config` (default: 8-d, words only) over `tokens`, standardised by `std`. */
export async function fakeCrossRun(dir: string, tokens: string[], std: Params, config: CrossConfig = { vocabSize: tokens.length, dim: 8, lambda: 9 }): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const hyper = { dim: config.dim, lambda: config.lambda, pairMinCount: 0, ...(config.global ? { global: config.global } : {}) };
  writeFileSync(join(dir, 'params.json'), JSON.stringify({ kind: 'cross-encoder', hyper, config, command: 'duo train-cross --run new --pairs 0', biEncoderId: 'starter-test' }));
  writeFileSync(join(dir, 'summary.json'), JSON.stringify({ bestEpoch: 4 }));
  writeFileSync(join(dir, 'vocab.json'), JSON.stringify(tokens));
  await saveTensors(join(dir, 'best.bin'), initCross(config, 5));
  await saveTensors(join(dir, 'standardiser.bin'), std);
}
