/**
 * A cross-encoder head whose global region reads MobileNetV2's pooled vector beside CenterNet's
 * (`global: 'pooled+mobilenet'`): regions, one shared standardiser with pooled heads, export
 * and loading from a pack.
 */
import assert from 'node:assert/strict';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadImage } from '../../src/data/image-loader.js';
import { defaultModelPath } from '../../src/models/load-encoder.js';
import { BackboneRunner, type BackboneFeatures } from '../../src/models/starter/backbone-runner.js';
import { crossScores, globalDim, headRegions, regionInputs, type CrossConfig, type CrossHead } from '../../src/models/starter/cross-scoring.js';
import { StarterCrossEncoder } from '../../src/models/starter/starter-cross-encoder.js';
import { Vocabulary } from '../../src/models/starter/vocab.js';
import { saveTensors, loadTensors, type Params } from '../../src/models/tensor-file.js';
import { computeStandardiser, initCross } from '../../src/train/cross-init.js';
import { seeded } from '../../src/train/dual-encoder.js';
import { collectHeads, exportCross, storedAs } from '../../src/train/export-cross.js';
import { tinyBackbone } from '../fixtures/tiny-backbone.js';
import { fakeCrossRun } from './cross-pack.js';
import { COLOURS, tempDir, writeColourImage } from '../helpers.js';

function features(n: number, seed: number): BackboneFeatures[] {
  const rand = seeded(seed);
  return Array.from({ length: n }, () => ({
    pooled: Float32Array.from({ length: 560 }, () => rand()),
    grid: Float32Array.from({ length: 480 * 16 }, () => rand()),
    mobilenet: Float32Array.from({ length: 1792 }, () => rand() * 3),
  }));
}

const pooledConfig: CrossConfig = { vocabSize: 12, dim: 8, lambda: 9 };
const mnv2Config: CrossConfig = { vocabSize: 12, dim: 8, lambda: 9, global: 'pooled+mobilenet' };

describe('global region from MobileNetV2', () => {
  it('a pooled head reads the start of a wider standardiser; a MobileNetV2 head reads all of it', async () => {
    const feats = features(5, 1);
    const narrow = computeStandardiser(feats);
    const wide = computeStandardiser(feats, 'pooled+mobilenet');
    assert.equal(narrow.pooledMean.length, 560);
    assert.equal(wide.pooledMean.length, 2352);
    assert.deepEqual(wide.pooledMean.subarray(0, 560), narrow.pooledMean, 'the pooled statistics come first, the same numbers');
    assert.deepEqual(wide.pooledStd.subarray(0, 560), narrow.pooledStd);
    assert.equal(initCross(mnv2Config, 1).get('global.W')!.length, 2352 * 8);

    const pooledHead: CrossHead = { config: pooledConfig, params: initCross(pooledConfig, 2) };
    const mnv2Head: CrossHead = { config: mnv2Config, params: initCross(mnv2Config, 3) };
    const alone = await headRegions([pooledHead], regionInputs(feats, narrow));
    const both = await headRegions([pooledHead, mnv2Head], regionInputs(feats, wide));
    const size = 17 * 8;
    for (let i = 0; i < feats.length; i++) {
      const a = alone[i]!;
      const b = both[i]!.subarray(0, size);
      for (let j = 0; j < size; j++) assert.ok(Math.abs(a[j]! - b[j]!) < 1e-6, `image ${i} value ${j}: ${a[j]} vs ${b[j]}`);
    }

    // MobileNetV2 features move the MobileNetV2 head's global region (row 16) and nothing else
    const moved = feats.map((f) => ({ ...f, mobilenet: f.mobilenet!.map((x) => 3 - x) }));
    const after = await headRegions([pooledHead, mnv2Head], regionInputs(moved, wide));
    const diff = (x: Float32Array, y: Float32Array, from: number, to: number) => Math.max(...Array.from(x.subarray(from, to), (v, k) => Math.abs(v - y[from + k]!)));
    assert.equal(diff(after[0]!, both[0]!, 0, size + 16 * 8), 0, "the pooled head's regions and the MobileNetV2 head's cells stay");
    assert.ok(diff(after[0]!, both[0]!, size + 16 * 8, 2 * size) > 1e-3, "the MobileNetV2 head's global region moves");

    // without MobileNetV2 features, a wide standardiser has nothing to read
    assert.throws(() => regionInputs([{ pooled: feats[0]!.pooled, grid: feats[0]!.grid }], wide), /MobileNetV2/);
    assert.equal(globalDim(mnv2Config), 2352);
    assert.equal(globalDim(pooledConfig), 560);
  });

  it('the pack stores a MobileNetV2 global projection as int8 rows, a pooled one as float16', () => {
    assert.deepEqual(storedAs(mnv2Config, 'global.W'), { q8: 8 });
    assert.equal(storedAs(pooledConfig, 'global.W'), 'f16');
    assert.deepEqual(storedAs(pooledConfig, 'tokens'), { q8: 8 });
    assert.equal(storedAs(mnv2Config, 'cell.W'), 'f16');
  });
});

describe('exporting heads of both global kinds', () => {
  it('shares the widest standardiser when the narrow one is its start, and refuses one that is not', async () => {
    const feats = features(4, 5);
    const tokens = Array.from({ length: 12 }, (_, i) => `w${i}`);
    const pooledRun = join(tempDir(), 'pooled');
    const mnv2Run = join(tempDir(), 'mnv2');
    await fakeCrossRun(pooledRun, tokens, new Map(Object.entries(computeStandardiser(feats))), pooledConfig);
    await fakeCrossRun(mnv2Run, tokens, new Map(Object.entries(computeStandardiser(feats, 'pooled+mobilenet'))), mnv2Config);
    const { heads, std } = await collectHeads({ runDirs: [pooledRun, mnv2Run], pack: tempDir() });
    assert.deepEqual(heads.map((h) => h.head.config.global), [undefined, 'pooled+mobilenet']);
    assert.equal(std.get('pooledMean')!.length, 2352);

    const otherRun = join(tempDir(), 'other');
    // the same cells, other pooled vectors: its pooled statistics are not the pooled run's
    const other = feats.map((f) => ({ ...f, pooled: f.pooled.map((x) => 2 * x) }));
    await fakeCrossRun(otherRun, tokens, new Map(Object.entries(computeStandardiser(other, 'pooled+mobilenet'))), mnv2Config);
    await assert.rejects(collectHeads({ runDirs: [pooledRun, otherRun], pack: tempDir() }), /standardiser pooledMean differs/);
  });
});

describe('exporting a MobileNetV2 head', () => {
  it('is refused into a pack whose backbone lacks the branch, and a run with an unknown global kind names its params.json', async () => {
    const feats = features(4, 5);
    const tokens = Array.from({ length: 12 }, (_, i) => `w${i}`);
    const run = join(tempDir(), 'mnv2');
    await fakeCrossRun(run, tokens, new Map(Object.entries(computeStandardiser(feats, 'pooled+mobilenet'))), mnv2Config);
    const pack = tempDir();
    writeFileSync(join(pack, 'backbone.onnx'), tinyBackbone(false));
    // refused before the dev split is read (there is none here)
    await assert.rejects(exportCross({ runDirs: [run], pack, data: join(tempDir(), 'no-data'), cacheDir: tempDir(), evalK1: 10 }), (e: Error) => /--pack/.test(e.message) && /no MobileNetV2 branch/.test(e.message) && e.message.includes(run));

    const bad = join(tempDir(), 'bad');
    await fakeCrossRun(bad, tokens, new Map(Object.entries(computeStandardiser(feats))), { ...mnv2Config, global: 'pooled+grid' as CrossConfig['global'] });
    await assert.rejects(collectHeads({ runDirs: [bad], pack }), /params\.json.*hyper\.global must be one of pooled, pooled\+mobilenet, got "pooled\+grid"/);
  });
});

/** A copy of the shipped pack (its backbone has MobileNetV2) with a pooled head and a MobileNetV2 head. */
async function packWithMobilenetHead(): Promise<{ dir: string; heads: CrossHead[]; vocab: Vocabulary }> {
  const dir = join(tempDir(), 'pack');
  cpSync(defaultModelPath(), dir, { recursive: true, filter: (src) => !/cross_/.test(src) });
  const vocab = new Vocabulary(JSON.parse(readFileSync(join(dir, 'vocab.json'), 'utf8')) as string[]);
  writeFileSync(join(dir, 'cross_vocab.json'), JSON.stringify(vocab.tokens));
  const configs: CrossConfig[] = [{ vocabSize: vocab.size, dim: 8, lambda: 9 }, { vocabSize: vocab.size, dim: 16, lambda: 5, global: 'pooled+mobilenet' }];
  const heads = configs.map((config, i) => ({ config, params: initCross(config, i + 7) }));
  const tensors: Params = new Map();
  heads.forEach((h, i) => {
    for (const [k, v] of h.params) if (k !== 'logScale') tensors.set(`h${i}.${k}`, v);
  });
  for (const [k, v] of Object.entries(computeStandardiser(features(3, 8), 'pooled+mobilenet'))) tensors.set(`std.${k}`, v);
  await saveTensors(join(dir, 'cross_encoder.bin'), tensors);
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ ...manifest, crossEncoder: { file: 'cross_encoder.bin', vocabulary: 'cross_vocab.json', heads: configs } }));
  return { dir, heads, vocab };
}

describe('a pack whose cross-encoder reads MobileNetV2', () => {
  it("scores what the heads compute on the pack backbone's features", async () => {
    const { dir, heads, vocab } = await packWithMobilenetHead();
    const image = join(tempDir(), 'red.jpg');
    await writeColourImage(image, COLOURS.red!);
    const cross = await StarterCrossEncoder.load(dir);
    try {
      const { scores } = await cross.score({ text: 'a red shirt' }, [{ id: 'red', image }]);
      const runner = await BackboneRunner.load(join(dir, 'backbone.onnx'));
      const feats = await runner.run([await loadImage(image)]);
      await runner.dispose();
      assert.ok(feats[0]!.mobilenet, 'the shipped backbone has the MobileNetV2 branch');
      const t = await loadTensors(join(dir, 'cross_encoder.bin'));
      const std = { cellMean: t.get('std.cellMean')!, cellStd: t.get('std.cellStd')!, pooledMean: t.get('std.pooledMean')!, pooledStd: t.get('std.pooledStd')! };
      const regions = await headRegions(heads, regionInputs(feats, std));
      const expected = (await crossScores(heads, [vocab.encode('a red shirt')], regions)).data[0]!;
      assert.ok(Math.abs(scores[0]! - expected) < 1e-5, `${scores[0]} vs ${expected}`);
    } finally {
      await cross.dispose();
    }
  });

  it('is refused on a backbone without MobileNetV2, and with an unknown global kind, naming the file', async () => {
    const { dir } = await packWithMobilenetHead();
    writeFileSync(join(dir, 'backbone.onnx'), tinyBackbone(false));
    await assert.rejects(StarterCrossEncoder.load(dir), (e: Error) => /backbone\.onnx/.test(e.message) && /no MobileNetV2 branch/.test(e.message));

    const other = (await packWithMobilenetHead()).dir;
    const manifest = JSON.parse(readFileSync(join(other, 'manifest.json'), 'utf8')) as { crossEncoder: { heads: Record<string, unknown>[] } };
    manifest.crossEncoder.heads[1]!.global = 'inception';
    writeFileSync(join(other, 'manifest.json'), JSON.stringify(manifest));
    await assert.rejects(StarterCrossEncoder.load(other), /manifest\.json.*crossEncoder\.heads\[1\]\.global must be one of pooled, pooled\+mobilenet, got "inception"/);

    // a MobileNetV2 head in a pack whose standardiser is only the pooled vector's
    const narrow = (await packWithMobilenetHead()).dir;
    const t = await loadTensors(join(narrow, 'cross_encoder.bin'));
    for (const k of ['std.pooledMean', 'std.pooledStd']) t.set(k, t.get(k)!.slice(0, 560));
    await saveTensors(join(narrow, 'cross_encoder.bin'), t);
    await assert.rejects(StarterCrossEncoder.load(narrow), /cross_encoder\.bin.*head 1's global projection does not read the 2352 inputs/);
  });
});
