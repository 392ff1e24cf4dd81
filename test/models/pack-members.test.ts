/**
 * A starter pack holding more models (duo pack-members): the pack embeds exactly as `--model
 * a=wa,b=wb` does over the separate packs, with one backbone run; a member reading MobileNetV2
 * brings its two-branch backbone only when its CenterNet outputs are the pack's; the weights are
 * part of the id; bad manifests are refused naming the field; a retrained pack drops its members.
 * Also: compact packs (export-pack's `compact`: int8 word vectors and head matrices) compute what
 * float32 packs do, to rounding, and their weights read back for the open vocabulary's rebuild.
 */
import assert from 'node:assert/strict';
import { cpSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { DuoError } from '../../src/errors.js';
import { loadEncoder } from '../../src/models/load-encoder.js';
import { StarterEncoder } from '../../src/models/starter/starter-encoder.js';
import { readInitializersFile } from '../../src/onnx/reader.js';
import { weightsOf } from '../../src/models/starter/text-graph.js';
import { exportStarterPack } from '../../src/train/export-pack.js';
import { packMembers } from '../../src/train/pack-members.js';
import { buildQueryBank } from '../../src/train/build-query-bank.js';
import { halfToFloat, floatToHalf } from '../../src/util/float16.js';
import { packageRoot } from '../../src/util/package-root.js';
import { runEncoderContract } from '../contracts/encoder.contract.js';
import { tinyBackbone } from '../fixtures/tiny-backbone.js';
import { trainTinyStarter } from '../fixtures/tiny-starter.js';
import { runDuo, tempDir, writeColourImage } from '../helpers.js';

const dir = tempDir();
const paths = {
  backbone: join(dir, 'centernet.onnx'),
  backboneMobilenet: join(dir, 'centernet-mobilenet.onnx'),
  runA: join(dir, 'run-a'),
  runB: join(dir, 'run-b'),
  runForeign: join(dir, 'run-foreign'),
  runReal: join(dir, 'run-real'),
  packA: join(dir, 'pack-a'),
  packB: join(dir, 'pack-b'),
  packForeign: join(dir, 'pack-foreign'),
  packReal: join(dir, 'pack-real'),
};
const TEXTS = ['a red car on the road', 'dog snow', 'unknownword', ''];

/** Two tiny runs on tiny backbones with the same CenterNet outputs (B adds MobileNetV2 and reads it), two on the real backbone. */
async function buildPacks(): Promise<void> {
  if (existsSync(paths.packReal)) return;
  writeFileSync(paths.backbone, tinyBackbone(false));
  writeFileSync(paths.backboneMobilenet, tinyBackbone(true));
  await trainTinyStarter(paths.runA, { backbone: paths.backbone });
  await trainTinyStarter(paths.runB, { backbone: paths.backboneMobilenet, features: 'pooled+mobilenet', seed: 2 });
  const real = join(packageRoot(), 'models', 'starter', 'backbone.onnx');
  await trainTinyStarter(paths.runForeign, { backbone: real, seed: 3 });
  await trainTinyStarter(paths.runReal, { backbone: real, seed: 5 });
  await exportStarterPack(paths.runA, paths.packA);
  await exportStarterPack(paths.runB, paths.packB);
  await exportStarterPack(paths.runForeign, paths.packForeign);
  await exportStarterPack(paths.runReal, paths.packReal);
}

/** pack A with pack B as a member at 0.6 / 0.4 (a fresh copy each call) */
async function packedAB(weights: [number, number] = [0.6, 0.4]): Promise<string> {
  await buildPacks();
  const pack = join(tempDir(), 'pack');
  cpSync(paths.packA, pack, { recursive: true });
  await packMembers({ pack, weight: weights[0], members: [{ spec: paths.packB, weight: weights[1] }] });
  return pack;
}

async function images(): Promise<string[]> {
  const d = tempDir();
  const out = [join(d, 'red.png'), join(d, 'teal.jpg')];
  await writeColourImage(out[0]!, [230, 20, 20], 'png', 80);
  await writeColourImage(out[1]!, [0, 128, 255], 'jpeg', 120);
  return out;
}

const close = (a: Float32Array[], b: Float32Array[], tol: number, what: string) => {
  assert.equal(a.length, b.length);
  a.forEach((v, i) => {
    assert.equal(v.length, b[i]!.length, `${what} ${i}: length`);
    v.forEach((x, j) => assert.ok(Math.abs(x - b[i]![j]!) <= tol, `${what} ${i}[${j}]: ${x} vs ${b[i]![j]}`));
  });
};

// on the real backbone: the tiny one's features, far from what the tiny runs were standardised on, put batch-size rounding (~5e-4) above the contract's 1e-4
runEncoderContract('a starter pack with a member', async () => {
  await buildPacks();
  const pack = join(tempDir(), 'pack');
  cpSync(paths.packForeign, pack, { recursive: true });
  await packMembers({ pack, weight: 0.7, members: [{ spec: paths.packReal, weight: 0.3 }] });
  return loadEncoder(pack);
});

describe('duo pack-members', () => {
  before(buildPacks);

  it('embeds texts and images as --model a=0.6,b=0.4 over the separate packs, through one backbone', async () => {
    const pack = await packedAB();
    const manifest = JSON.parse(readFileSync(join(pack, 'manifest.json'), 'utf8'));
    assert.equal(manifest.ensemble.weight, 0.6);
    assert.deepEqual(manifest.ensemble.members.map((m: { folder: string; weight: number; features: string }) => [m.folder, m.weight, m.features]), [['member-1', 0.4, 'pooled+mobilenet']]);
    // B reads MobileNetV2: its two-branch backbone replaced A's, whose CenterNet outputs it shares
    assert.equal(readFileSync(join(pack, 'backbone.onnx')).equals(readFileSync(join(paths.packB, 'backbone.onnx'))), true);
    assert.match(manifest.backbone.outputs, /mobilenet_mean\[1792\]/);
    for (const f of ['manifest.json', 'vocab.json', 'text_model.onnx', 'image_head.onnx']) assert.ok(existsSync(join(pack, 'member-1', f)), f);
    assert.equal(existsSync(join(pack, 'member-1', 'backbone.onnx')), false, 'a member shares the backbone');

    const packed = await loadEncoder(pack);
    const separate = await loadEncoder(`${paths.packA}=0.6,${paths.packB}=0.4`);
    try {
      assert.ok(packed instanceof StarterEncoder);
      assert.equal(packed.dim, 12);
      assert.deepEqual(packed.parts.map((p) => [p.folder, p.features, Number(p.weight.toFixed(6))]), [['.', 'pooled', 0.6], ['member-1', 'pooled+mobilenet', 0.4]]);
      close(await packed.encodeTexts(TEXTS), await separate.encodeTexts(TEXTS), 1e-6, 'text');
      const imgs = await images();
      close(await packed.encodeImages(imgs), await separate.encodeImages(imgs), 1e-5, 'image');
      // a pack vector is unit length, and its first part is A's own vector scaled by √0.6
      const [v] = await packed.encodeTexts(['a red car']);
      const [a] = await (await loadEncoder(paths.packA)).encodeTexts(['a red car']);
      assert.ok(Math.abs(Math.hypot(...v!) - 1) < 1e-5);
      a!.forEach((x, j) => assert.ok(Math.abs(v![j]! - Math.sqrt(0.6) * x) < 1e-6));
    } finally {
      await Promise.all([packed.dispose(), separate.dispose()]);
    }
  });

  it("the id names the members' weights and changes with them, and differs from the pack's own model's", async () => {
    const [ab, ab55] = [await packedAB(), await packedAB([0.5, 0.5])];
    const [e1, e2, single] = [await loadEncoder(ab), await loadEncoder(ab55), await loadEncoder(paths.packA)];
    try {
      assert.notEqual(e1.id, e2.id);
      assert.match(e1.id, /\[0\.6,0\.4\]$/);
      assert.notEqual(e1.id, single.id);
    } finally {
      await Promise.all([e1.dispose(), e2.dispose(), single.dispose()]);
    }
  });

  it('refuses a member trained on another backbone, a member with members, and bad weights', async () => {
    const pack = join(tempDir(), 'pack');
    cpSync(paths.packA, pack, { recursive: true });
    await assert.rejects(packMembers({ pack, weight: 0.5, members: [{ spec: paths.packForeign, weight: 0.5 }] }), (e: DuoError) => e.code === 'BAD_ARGUMENT' && e.message.includes('--add') && e.message.includes('other CenterNet features'));
    assert.equal(JSON.parse(readFileSync(join(pack, 'manifest.json'), 'utf8')).ensemble, undefined, 'nothing written');
    const withMembers = await packedAB();
    await assert.rejects(packMembers({ pack, weight: 0.5, members: [{ spec: withMembers, weight: 0.5 }] }), (e: DuoError) => e.code === 'BAD_ARGUMENT' && e.message.includes('members of its own'));
    await assert.rejects(packMembers({ pack, weight: 0, members: [{ spec: paths.packB, weight: 0.5 }] }), (e: DuoError) => e.code === 'BAD_ARGUMENT' && e.message.includes('--weight'));
    await assert.rejects(packMembers({ pack, weight: 0.5, members: [{ spec: pack, weight: 0.5 }] }), (e: DuoError) => e.code === 'BAD_ARGUMENT' && e.message.includes('the pack itself'));
  });

  it('refuses a MobileNetV2 member whose backbone lacks the branch, and a member naming files outside its folder', async () => {
    const pack = join(tempDir(), 'pack');
    cpSync(paths.packA, pack, { recursive: true });
    const broken = join(tempDir(), 'no-branch');
    cpSync(paths.packB, broken, { recursive: true });
    writeFileSync(join(broken, 'backbone.onnx'), tinyBackbone(false));
    await assert.rejects(packMembers({ pack, weight: 0.5, members: [{ spec: broken, weight: 0.5 }] }), (e: DuoError) => e.code === 'BAD_ARGUMENT' && e.message.includes('no MobileNetV2 branch'));
    const outside = join(tempDir(), 'outside');
    cpSync(paths.packB, outside, { recursive: true });
    const m = JSON.parse(readFileSync(join(outside, 'manifest.json'), 'utf8'));
    writeFileSync(join(outside, 'manifest.json'), JSON.stringify({ ...m, openVocabulary: { words: '../../etc/words.json', table: 'open_vocab.bin' } }));
    await assert.rejects(packMembers({ pack, weight: 0.5, members: [{ spec: outside, weight: 0.5 }] }), (e: DuoError) => e.code === 'MODEL_UNSUPPORTED' && e.message.includes('not a file of the pack'));
    assert.equal(existsSync(join(pack, 'member-1')), false, 'nothing written');
  });

  it('a damaged ensemble entry is refused naming the field', async () => {
    const pack = await packedAB();
    const file = join(pack, 'manifest.json');
    const good = JSON.parse(readFileSync(file, 'utf8'));
    const cases: [unknown, string][] = [
      [{ ...good.ensemble, members: [{ ...good.ensemble.members[0], weight: -1 }] }, 'ensemble.members.0.weight'],
      [{ ...good.ensemble, weight: 'x' }, 'ensemble.weight'],
      [{ ...good.ensemble, members: [{ ...good.ensemble.members[0], folder: '../pack-b' }] }, 'ensemble.members.0.folder'],
      [{ ...good.ensemble, members: [] }, 'ensemble.members is empty'],
      [{ ...good.ensemble, members: [{ ...good.ensemble.members[0], folder: 'missing' }] }, 'missing'],
    ];
    for (const [ensemble, field] of cases) {
      writeFileSync(file, JSON.stringify({ ...good, ensemble }));
      await assert.rejects(loadEncoder(pack), (e: DuoError) => e instanceof DuoError && e.message.includes(field), field);
    }
  });

  it('exporting a new model into the pack drops the members weighted against the old one', async () => {
    const pack = await packedAB();
    await exportStarterPack(paths.runA, pack);
    assert.equal(existsSync(join(pack, 'member-1')), false);
    assert.equal(JSON.parse(readFileSync(join(pack, 'manifest.json'), 'utf8')).ensemble, undefined);
    const e = await loadEncoder(pack);
    assert.equal(e.dim, 6);
    await e.dispose();
  });
});

describe('the duo pack-members command (compiled)', () => {
  before(buildPacks);

  it('adds members with their weights; a member without a weight or a pack that is not one is refused naming the flag', async () => {
    const pack = join(tempDir(), 'pack');
    cpSync(paths.packA, pack, { recursive: true });
    const ok = await runDuo(['pack-members', '--pack', pack, '--add', `${paths.packB}=0.45`, '--weight', '0.55', '--json']);
    assert.equal(ok.code, 0, ok.stderr);
    const r = JSON.parse(ok.stdout);
    assert.equal(r.weight, 0.55);
    assert.deepEqual(r.members.map((m: { folder: string; weight: number }) => [m.folder, m.weight]), [['member-1', 0.45]]);
    assert.equal(r.backboneFrom, join(paths.packB, 'backbone.onnx'));

    const noWeight = await runDuo(['pack-members', '--pack', pack, '--add', paths.packB, '--weight', '0.5']);
    assert.equal(noWeight.code, 2, noWeight.stderr);
    assert.match(noWeight.stderr, /--add.*<pack>=<weight>/);
    const notPack = await runDuo(['pack-members', '--pack', pack, '--add', `${tempDir()}=0.5`, '--weight', '0.5']);
    assert.notEqual(notPack.code, 0);
    assert.match(notPack.stderr, /manifest\.json/);
  });

  it('duo export-pack writes a finished run as a pack, compact on request; a folder that holds no run is refused naming its params.json', async () => {
    const pack = join(tempDir(), 'exported');
    const r = await runDuo(['export-pack', paths.runA, '--pack', pack, '--compact']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(JSON.parse(readFileSync(join(pack, 'manifest.json'), 'utf8')).weights, /^compact/);
    const e = await loadEncoder(pack);
    assert.equal(e.dim, 6);
    await e.dispose();
    const empty = tempDir();
    const bad = await runDuo(['export-pack', empty, '--pack', join(tempDir(), 'x')]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /params\.json/);
  });
});

describe('a query bank in a pack (duo query-bank)', () => {
  before(buildPacks);

  it('holds a seeded sample embedded by the pack; its bank and β are part of the id, λ is not; bad counts are refused naming the flag', async () => {
    const pack = join(tempDir(), 'pack');
    cpSync(paths.packA, pack, { recursive: true });
    const imgs = await images();
    const ds = { name: 'tiny', split: 'train', images: imgs.map((p, i) => ({ id: `i${i}`, source: p })), captions: TEXTS.slice(0, 3).map((text, i) => ({ imageId: `i${i % 2}`, text })) };
    const plain = await loadEncoder(pack);
    await buildQueryBank({ pack, ds, texts: 3, images: 2, beta: 20, lambda: 0.5, seed: 1, command: 'test' });
    const banked = await loadEncoder(pack);
    try {
      assert.match(banked.id, /^pack@[0-9a-f]{12}\+qb20$/);
      assert.notEqual(banked.id.replace('+qb20', ''), plain.id, 'the bank file is hashed into the id');
      const bank = banked.queryBank!;
      assert.deepEqual([bank.texts.length, bank.images.length, bank.beta, bank.lambda], [3 * 6, 2 * 6, 20, 0.5]);
      // the rows are the pack's own embeddings of the sampled captions, as int8 rows (within half a step of each row's scale)
      const own = await plain.encodeTexts(ds.captions.map((c) => c.text));
      for (let r = 0; r < 3; r++) {
        const row = bank.texts.subarray(r * 6, (r + 1) * 6);
        const match = own.find((v) => v.every((x, j) => Math.abs(x - row[j]!) <= Math.max(...v.map(Math.abs)) / 254 + 1e-7));
        assert.ok(match, `bank row ${r} is one of the sampled captions' embeddings`);
      }
    } finally {
      await Promise.all([plain.dispose(), banked.dispose()]);
    }
    const file = join(pack, 'manifest.json');
    const m = JSON.parse(readFileSync(file, 'utf8'));
    const idWith = async (queryBank: Record<string, unknown>) => {
      writeFileSync(file, JSON.stringify({ ...m, queryBank }));
      const e = await loadEncoder(pack);
      await e.dispose();
      return e.id;
    };
    const id = await idWith(m.queryBank);
    assert.equal(await idWith({ ...m.queryBank, lambda: 2 }), id, 'λ is used at query time only');
    assert.notEqual(await idWith({ ...m.queryBank, beta: 10 }), id, 'β decides the stored hubness');
    await assert.rejects(buildQueryBank({ pack, ds, texts: 4, images: 2, beta: 20, lambda: 0.5, seed: 1, command: 'test' }), (e: DuoError) => e.code === 'BAD_ARGUMENT' && e.message.includes('--texts'));
    await assert.rejects(buildQueryBank({ pack, ds, texts: 3, images: 2, beta: 0, lambda: 0.5, seed: 1, command: 'test' }), (e: DuoError) => e.code === 'BAD_ARGUMENT' && e.message.includes('--beta'));

    // the bank belongs to the model that embedded it: adding members or exporting a new model removes it
    writeFileSync(file, JSON.stringify(m));
    const withMember = join(tempDir(), 'with-member');
    cpSync(pack, withMember, { recursive: true });
    const r = await packMembers({ pack: withMember, weight: 0.5, members: [{ spec: paths.packB, weight: 0.5 }] });
    assert.equal(r.droppedQueryBank, true);
    assert.equal(existsSync(join(withMember, 'query_bank.bin')), false);
    assert.equal(JSON.parse(readFileSync(join(withMember, 'manifest.json'), 'utf8')).queryBank, undefined);
    const unbanked = await loadEncoder(withMember);
    assert.equal(unbanked.queryBank, undefined);
    await unbanked.dispose();
    await exportStarterPack(paths.runA, pack);
    assert.equal(existsSync(join(pack, 'query_bank.bin')), false);
    assert.equal(JSON.parse(readFileSync(file, 'utf8')).queryBank, undefined);
  });
});

describe('a compact pack (int8 word vectors and head matrices, float16 biases)', () => {
  before(buildPacks);

  it('is a fraction of the bytes and embeds as the float32 pack does, to rounding; its weights read back as float32', async () => {
    const half = join(tempDir(), 'half');
    await exportStarterPack(paths.runA, half, { compact: true });
    // the image head's weights (560 × 16 and more) are most of its file; the tiny text model's are not
    for (const f of ['image_head.onnx']) {
      // the matrices' weights take one byte instead of four, the biases two (the feature standardiser stays float32)
      const weightBytes = [...(await readInitializersFile(join(paths.packA, f))).values()].reduce((a, t) => a + 4 * t.data.length, 0);
      const saved = statSync(join(paths.packA, f)).size - statSync(join(half, f)).size;
      assert.ok(saved > 0.6 * weightBytes && saved <= 0.75 * weightBytes, `${f}: ${saved} bytes saved of ${weightBytes} weight bytes`);
    }
    assert.match(JSON.parse(readFileSync(join(half, 'manifest.json'), 'utf8')).weights, /int8 rows.*int8 columns.*float16/);
    const [h, f] = [await loadEncoder(half), await loadEncoder(paths.packA)];
    // unit vectors: what retrieval sees is their cosine with the float32 pack's
    const cosines = (a: Float32Array[], b: Float32Array[]) => a.map((v, i) => v.reduce((s, x, j) => s + x * b[i]![j]!, 0));
    try {
      const imgs = await images();
      const cos = [...cosines(await h.encodeTexts(TEXTS.slice(0, 3)), await f.encodeTexts(TEXTS.slice(0, 3))), ...cosines(await h.encodeImages(imgs), await f.encodeImages(imgs))];
      cos.forEach((c, i) => assert.ok(c > 0.9995 && c < 1.0001, `vector ${i}: cosine ${c} with the float32 pack's`));
    } finally {
      await Promise.all([h.dispose(), f.dispose()]);
    }
    // what the open vocabulary's rebuild reads: word vectors within half an int8 step of their row's scale,
    // head matrices within half a step of their column's, biases at their float16 value
    const [wh, wf] = [weightsOf(await readInitializersFile(join(half, 'text_model.onnx'))), weightsOf(await readInitializersFile(join(paths.packA, 'text_model.onnx')))];
    assert.deepEqual([...wh.keys()].sort(), [...wf.keys()].sort());
    const shapes: Record<string, [number, number, 'row' | 'column']> = { 'text.embed': [wf.get('text.embed')!.length / 8, 8, 'row'], 'text.head.l1.W': [8, 16, 'column'], 'text.head.l2.W': [16, 6, 'column'] };
    for (const [name, data] of wf) {
      assert.equal(wh.get(name)!.length, data.length, name);
      const shape = shapes[name];
      if (!shape) {
        data.forEach((x, i) => assert.equal(wh.get(name)![i], halfToFloat(floatToHalf(x)), `${name}[${i}]`));
        continue;
      }
      const [rows, cols, along] = shape;
      const group = (i: number) => (along === 'row' ? Math.floor(i / cols) : i % cols);
      const max = new Float32Array(along === 'row' ? rows : cols);
      data.forEach((x, i) => (max[group(i)] = Math.max(max[group(i)]!, Math.abs(x))));
      data.forEach((x, i) => assert.ok(Math.abs(wh.get(name)![i]! - x) <= max[group(i)]! / 254 + 1e-7, `${name}[${i}]`));
    }
    assert.equal(Object.keys(shapes).length, 3);
  });
});
