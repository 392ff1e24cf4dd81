import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DuoError } from '../../src/errors.js';
import { HeadedEncoder } from '../../src/models/headed-encoder.js';
import type { Encoder } from '../../src/models/encoder.js';
import { defaultModelPath, loadEncoder } from '../../src/models/load-encoder.js';
import { POOLED_DIM } from '../../src/models/starter/backbone-runner.js';
import { StarterEncoder } from '../../src/models/starter/starter-encoder.js';
import { encodeImageFeatures, encodeTextIds, initDualEncoder, mat, seeded } from '../../src/train/dual-encoder.js';
import { loadTensors, type Params } from '../../src/models/tensor-file.js';
import { exportStarterPack } from '../../src/train/export-pack.js';
import { initHead } from '../../src/train/layers.js';
import { headOnnx } from '../../src/train/train-head.js';
import { packageRoot } from '../../src/util/package-root.js';
import { runEncoderContract } from '../contracts/encoder.contract.js';
import { trainTinyStarter, TINY_CONFIG } from '../fixtures/tiny-starter.js';
import { tempDir } from '../helpers.js';

describe('starter pack export', () => {
  it('into an existing pack: keeps its cross-encoder section, drops its now stale open vocabulary', async () => {
    const runDir = join(tempDir(), 'run');
    await trainTinyStarter(runDir);
    const pack = join(tempDir(), 'pack');
    mkdirSync(pack);
    const crossEncoder = { file: 'cross_encoder.bin', fusion: { mode: 'weighted', alpha: 0.6 } };
    writeFileSync(join(pack, 'manifest.json'), JSON.stringify({ format: 'duo-starter-pack', crossEncoder, openVocabulary: { words: 'open_vocab.json' } }));
    writeFileSync(join(pack, 'open_vocab.json'), '[]');
    writeFileSync(join(pack, 'open_vocab.bin'), 'x');
    writeFileSync(join(pack, 'cross_encoder.bin'), 'weights');
    await exportStarterPack(runDir, pack);
    const m = JSON.parse(readFileSync(join(pack, 'manifest.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual(m.crossEncoder, crossEncoder);
    assert.equal(m.openVocabulary, undefined);
    assert.equal(existsSync(join(pack, 'open_vocab.json')), false);
    assert.equal(existsSync(join(pack, 'open_vocab.bin')), false);
    assert.equal(readFileSync(join(pack, 'cross_encoder.bin'), 'utf8'), 'weights');
    assert.ok(await loadEncoder(pack), 'the pack loads');

    writeFileSync(join(pack, 'manifest.json'), '{ not json');
    await assert.rejects(exportStarterPack(runDir, pack), (e: DuoError) => e.code === 'MODEL_UNSUPPORTED' && e.message.includes(join(pack, 'manifest.json')));
  });

  it('the exported ONNX pack computes what the training code computes', async () => {
    const runDir = join(tempDir(), 'run');
    const { vocab, split } = await trainTinyStarter(runDir);
    // a folder that does not exist yet, as `duo train --pack <new dir>` gives it
    const pack = join(tempDir(), 'packs', 'new');
    await exportStarterPack(runDir, pack);
    const encoder = await loadEncoder(pack);
    assert.ok(encoder instanceof StarterEncoder);
    assert.equal(encoder.dim, 6);

    // the same weights, through the training code
    const params = await loadTensors(join(runDir, 'best.bin'));
    const norm = await loadTensors(join(runDir, 'image-norm.bin'));
    const model = { ...initDualEncoder({ ...TINY_CONFIG, vocabSize: vocab.size }, 1), params };
    const texts = ['a red car', 'dog snow', 'unknownword'];
    const viaTraining = await encodeTextIds(model, texts.map((t) => vocab.encode(t)));
    const viaPack = await encoder.encodeTexts(texts);
    viaPack.forEach((v, i) => v.forEach((x, j) => assert.ok(Math.abs(x - viaTraining.data[i * 6 + j]!) < 1e-5)));

    const raw = split.x.slice(0, 2 * POOLED_DIM);
    const standardised = raw.map((x, i) => (x - norm.get('mean')![i % POOLED_DIM]!) / norm.get('std')![i % POOLED_DIM]!);
    const imgTraining = await encodeImageFeatures(model, mat(2, POOLED_DIM, standardised));
    const imgPack = await (encoder as StarterEncoder).embedFeatures([{ pooled: raw.subarray(0, POOLED_DIM), grid: new Float32Array(0) }, { pooled: raw.subarray(POOLED_DIM), grid: new Float32Array(0) }]);
    imgPack.forEach((v, i) => v.forEach((x, j) => assert.ok(Math.abs(x - imgTraining.data[i * 6 + j]!) < 1e-4)));
    await encoder.dispose();
  });
});

/** What `duo train-head` writes: residual linear heads, the identity unless `perturb`. */
async function writeHead(dir: string, baseId: string, dim: number, perturb: boolean) {
  mkdirSync(dir, { recursive: true });
  const params: Params = new Map();
  const spec = { kind: 'linear' as const, inDim: dim, outDim: dim, hidden: 0, residual: true };
  initHead(params, 'image.head', spec, seeded(1));
  initHead(params, 'text.head', spec, seeded(2));
  if (perturb) params.get('text.head.l1.W')![1] = 0.5;
  writeFileSync(join(dir, 'image_head.onnx'), headOnnx(params, 'image.head', spec));
  writeFileSync(join(dir, 'text_head.onnx'), headOnnx(params, 'text.head', spec));
  writeFileSync(join(dir, 'head.json'), JSON.stringify({ format: 'duo-head', baseId, baseModel: 'x', kind: 'linear', dim }));
}

/** The starter pack behind a head, as `duo train-head --encoder models/starter` leaves it. */
async function headedStarter(): Promise<Encoder> {
  const base = await loadEncoder(defaultModelPath());
  const dir = join(tempDir(), 'starter-head');
  await writeHead(dir, base.id, base.dim, true);
  await base.dispose();
  return loadEncoder(defaultModelPath(), { head: dir });
}

runEncoderContract('projection heads on the starter pack', headedStarter);

describe('projection heads on a frozen encoder', () => {
  it('a fresh residual head is the identity; the id names base and head; a head for another base is refused', async () => {
    const base = await loadEncoder(join(packageRoot(), 'models', 'colour-clip'));
    const dir = join(tempDir(), 'head');
    await writeHead(dir, base.id, base.dim, false);
    const headed = await loadEncoder(join(packageRoot(), 'models', 'colour-clip'), { head: dir });
    assert.ok(headed instanceof HeadedEncoder);
    assert.notEqual(headed.id, base.id);
    assert.ok(headed.id.startsWith(`${base.id}+head@`));
    const [a] = await base.encodeTexts(['a red thing']);
    const [b] = await headed.encodeTexts(['a red thing']);
    a!.forEach((x, i) => assert.ok(Math.abs(x - b![i]!) < 1e-6));

    const moved = join(tempDir(), 'moved');
    await writeHead(moved, base.id, base.dim, true);
    const changed = await loadEncoder(join(packageRoot(), 'models', 'colour-clip'), { head: moved });
    const [c] = await changed.encodeTexts(['a red thing']);
    assert.ok(c!.some((x, i) => Math.abs(x - a![i]!) > 1e-3), 'a trained head changes the text embedding');

    const wrong = join(tempDir(), 'wrong');
    await writeHead(wrong, 'some-other-model@123', base.dim, false);
    await assert.rejects(loadEncoder(join(packageRoot(), 'models', 'colour-clip'), { head: wrong }), (e: unknown) => e instanceof DuoError && /some-other-model/.test(e.message));
    await Promise.all([base.dispose(), headed.dispose(), changed.dispose()]);
  });

  it('reads the words its base reads: textCoverage is the base\'s, and absent over CLIP', async () => {
    const headed = await headedStarter();
    assert.ok(headed instanceof HeadedEncoder);
    assert.deepEqual(headed.textCoverage!('a dog and a quokka'), headed.base.textCoverage!('a dog and a quokka'));
    assert.deepEqual(headed.textCoverage!('a dog and a quokka'), { known: ['a', 'dog', 'and'], unknown: ['quokka'] });
    const clip = await loadEncoder(join(packageRoot(), 'models', 'colour-clip'));
    const dir = join(tempDir(), 'clip-head');
    await writeHead(dir, clip.id, clip.dim, false);
    const overClip = await loadEncoder(join(packageRoot(), 'models', 'colour-clip'), { head: dir });
    assert.equal(overClip.textCoverage, undefined);
    await Promise.all([headed.dispose(), clip.dispose(), overClip.dispose()]);
  });
});

