import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Vocabulary } from '../../src/models/starter/vocab.js';
import { seeded } from '../../src/train/dual-encoder.js';
import { listRuns, readRun } from '../../src/train/runs.js';
import { loadTensors, saveTensors } from '../../src/models/tensor-file.js';
import { trainOnSplits, type FeatureSplit, type TrainLoopOptions } from '../../src/train/train-starter.js';
import { tempDir } from '../helpers.js';

/** Images of 8 concepts (a noisy centre in 16-d); captions name the concept among filler words. */
function synthetic(images: number, seed: number, vocab: Vocabulary): FeatureSplit {
  const rand = seeded(seed);
  const dim = 16;
  const centres = Array.from({ length: 8 }, (_, c) => Array.from({ length: dim }, (_, j) => Math.sin(c * 7.1 + j * 1.3) * 2));
  const x = new Float32Array(images * dim);
  const captions: Int32Array[][] = [];
  const flatCaptions: Int32Array[] = [];
  const captionImage: number[] = [];
  for (let i = 0; i < images; i++) {
    const c = i % 8;
    for (let j = 0; j < dim; j++) x[i * dim + j] = centres[c]![j]! + (rand() - 0.5);
    captions.push([]);
    for (let k = 0; k < 5; k++) {
      const ids = vocab.encode(`a photo of thing${c} ${rand() < 0.5 ? 'outside' : 'inside'}`);
      captions[i]!.push(ids);
      flatCaptions.push(ids);
      captionImage.push(i);
    }
  }
  return { images, dim, x, captions, flatCaptions, captionImage };
}

const vocab = Vocabulary.build(['a photo of outside inside', 'a photo of outside inside', ...Array.from({ length: 8 }, (_, c) => `thing${c} thing${c}`)]);

const options = (runDir: string, extra: Partial<TrainLoopOptions> = {}): TrainLoopOptions => ({
  runDir,
  head: 'mlp',
  hidden: 32,
  wordDim: 16,
  embedDim: 8,
  batchSize: 32,
  epochs: 4,
  lr: 1e-2,
  weightDecay: 1e-4,
  patience: 10,
  seed: 7,
  minCount: 1,
  featureDropout: 0.1,
  wordDropout: 0.1,
  command: 'test',
  dataInfo: { synthetic: true },
  backbone: 'none',
  ...extra,
});

describe('training loop', () => {
  const train = synthetic(160, 1, vocab);
  const dev = synthetic(40, 2, vocab);

  it('learns a separable toy task and records the run', async () => {
    const runs = tempDir();
    const { best } = await trainOnSplits(options(join(runs, 'toy')), train, dev, vocab);
    assert.ok(best!.dev.textToImage['R@10'] > 90, `t→i R@10 ${best!.dev.textToImage['R@10']}`);
    const run = readRun(join(runs, 'toy'));
    assert.equal(run.metrics.length, 4);
    assert.ok(run.metrics[3]!.loss < run.metrics[0]!.loss, 'loss falls');
    assert.equal(run.summary!.bestEpoch, best!.epoch);
    for (const f of ['params.json', 'metrics.jsonl', 'checkpoint.bin', 'checkpoint.json', 'best.bin', 'vocab.json', 'image-norm.bin', 'summary.json']) {
      assert.ok(existsSync(join(runs, 'toy', f)), f);
    }
    assert.deepEqual(listRuns(runs).map((r) => r.id), ['toy']);
  });

  it('a killed run resumes to exactly the result of an uninterrupted one', async () => {
    const runs = tempDir();
    await trainOnSplits(options(join(runs, 'straight')), train, dev, vocab);
    let epochs = 0;
    await assert.rejects(
      trainOnSplits(options(join(runs, 'killed'), { onLog: () => { if (++epochs === 2) throw new Error('killed'); } }), train, dev, vocab),
      /killed/,
    );
    await trainOnSplits(options(join(runs, 'killed'), { resume: true }), train, dev, vocab);
    const strip = (dir: string) => readRun(dir).metrics.map(({ seconds: _s, ...m }) => m);
    assert.deepEqual(strip(join(runs, 'killed')), strip(join(runs, 'straight')));
    const a = await loadTensors(join(runs, 'killed', 'best.bin'));
    const b = await loadTensors(join(runs, 'straight', 'best.bin'));
    for (const [k, v] of a) assert.deepEqual(Array.from(v), Array.from(b.get(k)!), k);
  });

  it('refuses to overwrite a run, and to resume with other settings', async () => {
    const runs = tempDir();
    await trainOnSplits(options(join(runs, 'r'), { epochs: 1 }), train, dev, vocab);
    await assert.rejects(trainOnSplits(options(join(runs, 'r'), { epochs: 1 }), train, dev, vocab), /--resume/);
    await assert.rejects(trainOnSplits(options(join(runs, 'r'), { epochs: 1, resume: true, lr: 0.5 }), train, dev, vocab), /--lr/);
  });
});

describe('Vocabulary', () => {
  it('keeps words seen often enough, lower-cases, and never returns an empty caption', () => {
    const v = Vocabulary.build(['A dog runs .', 'a DOG sits', 'a cat'], 2);
    assert.deepEqual(v.tokens, ['<unk>', 'a', 'dog']);
    assert.deepEqual(Array.from(v.encode('The dog, a dog!')), [2, 1, 2]);
    assert.deepEqual(Array.from(v.encode('zebra')), [0]);
  });
});

describe('tensor files', () => {
  it('round-trip named tensors', async () => {
    const path = join(tempDir(), 't.bin');
    const tensors = new Map([['a', Float32Array.from([1, 2, 3])], ['b.c', Float32Array.from([-0.5])]]);
    await saveTensors(path, tensors);
    assert.deepEqual(await loadTensors(path), tensors);
    assert.ok(readFileSync(path).length > 16);
  });
});
