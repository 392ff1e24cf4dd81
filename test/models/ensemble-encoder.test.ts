import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { evaluateHybrid } from '../../src/eval/hybrid-eval.js';
import { evaluateRetrieval } from '../../src/eval/retrieval-eval.js';
import { BlipItmReranker } from '../../src/models/blip/blip-itm.js';
import { sweepEnsemble } from '../../src/eval/ensemble-sweep.js';
import { recordedSpec } from '../../src/index/vector-store.js';
import { ensembleSpec, parseEnsembleSpec, type EnsembleEncoder } from '../../src/models/ensemble-encoder.js';
import { loadEncoder } from '../../src/models/load-encoder.js';
import { packageRoot } from '../../src/util/package-root.js';
import { runEncoderContract } from '../contracts/encoder.contract.js';
import { COLOURS, colourDataset, runDuo, tempDir, writeColourImage } from '../helpers.js';

const CLIP = join(packageRoot(), 'models', 'colour-clip');
const SIGLIP = join(packageRoot(), 'models', 'colour-siglip');
const cos = (a: Float32Array, b: Float32Array) => {
  let d = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    d += a[i]! * b[i]!;
    na += a[i]! ** 2;
    nb += b[i]! ** 2;
  }
  return d / Math.sqrt(na * nb);
};

runEncoderContract('an ensemble of colour-clip and colour-siglip', () => loadEncoder(`${CLIP}=0.7,${SIGLIP}=0.3`));

describe('EnsembleEncoder', () => {
  it('parses a,b and a=w,b=w, normalising the weights, and names a bad member', () => {
    assert.equal(parseEnsembleSpec('models/starter'), undefined);
    assert.deepEqual(parseEnsembleSpec('a,b'), [
      { spec: 'a', weight: 0.5 },
      { spec: 'b', weight: 0.5 },
    ]);
    assert.deepEqual(parseEnsembleSpec('a=3, b=1'), [
      { spec: 'a', weight: 0.75 },
      { spec: 'b', weight: 0.25 },
    ]);
    assert.throws(() => parseEnsembleSpec('a=0,b'), /--model.*member 1 \(a\): weight "0" is not a positive number/);
    assert.throws(() => parseEnsembleSpec('a,,b'), /--model.*member 2 of "a,,b" is empty/);
  });

  it("scores a pair with the weighted sum of its members' cosines", async () => {
    const ensemble = (await loadEncoder(`${CLIP}=0.7,${SIGLIP}=0.3`)) as EnsembleEncoder;
    const [clip, siglip] = ensemble.members.map((m) => m.encoder);
    const dir = tempDir();
    const red = join(dir, 'red.png');
    await writeColourImage(red, COLOURS.red!, 'png');
    for (const text of ['a red square', 'something blue']) {
      const [t] = await ensemble.encodeTexts([text]);
      const [v] = await ensemble.encodeImages([red]);
      const want = 0.7 * cos((await clip!.encodeTexts([text]))[0]!, (await clip!.encodeImages([red]))[0]!) + 0.3 * cos((await siglip!.encodeTexts([text]))[0]!, (await siglip!.encodeImages([red]))[0]!);
      assert.ok(Math.abs(cos(t!, v!) - want) < 1e-5, `${text}: ${cos(t!, v!)} vs ${want}`);
    }
    assert.equal(ensemble.dim, clip!.dim + siglip!.dim);
    assert.match(ensemble.id, /^ensemble\(.+=0\.7,.+=0\.3\)$/);
    await ensemble.dispose();
  });

  it('records every member as an absolute path', () => {
    const rel = relative(process.cwd(), CLIP);
    assert.equal(recordedSpec(`${rel}=0.25,${relative(process.cwd(), SIGLIP)}=0.75`), `${CLIP}=0.25,${SIGLIP}=0.75`);
    assert.equal(recordedSpec('some/hub-id,other/hub-id'), 'some/hub-id=0.5,other/hub-id=0.5');
    // an ensemble's id is not a spec (evaluation's in-memory stores record ids without recordedSpec)
    assert.throws(() => recordedSpec('ensemble(a@1=0.4,b@2=0.6)'), /--model.*member 2 \(b@2\): weight "0.6\)" is not a positive number/);
  });

  it('indexes and searches from the command line, and refuses a member alone on its index', async () => {
    const dir = tempDir();
    const photos = join(dir, 'photos');
    mkdirSync(photos);
    for (const [name, rgb] of Object.entries(COLOURS)) await writeColourImage(join(photos, `${name}.jpg`), rgb);
    const index = join(dir, 'x.duo');
    const built = await runDuo(['index', photos, '--index', index, '--model', `${CLIP},${SIGLIP}`, '--json']);
    assert.equal(built.code, 0, built.stderr);
    const found = await runDuo(['search', 'a green square', '--index', index, '--k', '1', '--json']);
    assert.equal(found.code, 0, found.stderr);
    assert.equal((JSON.parse(found.stdout) as { results: { id: string }[] }).results[0]!.id, 'green.jpg');
    const alone = await runDuo(['search', 'a green square', '--index', index, '--model', CLIP]);
    assert.equal(alone.code, 65, alone.stderr);
    assert.match(alone.stderr, /ensemble\(/);
  });

  it('drives the hybrid evaluation (its in-memory stores record the ensemble)', async () => {
    const ds = await colourDataset();
    const ensemble = await loadEncoder(`${CLIP},${SIGLIP}`);
    const blip = await BlipItmReranker.load(join(packageRoot(), 'models', 'colour-blip'));
    const r = await evaluateHybrid(ds, ensemble, blip, { k1: 3, fusion: 'weighted', directions: ['textToImage'] });
    // every colour caption finds its own square first, in stage 1 and after stage 2
    assert.equal(r.stage1.textToImage!['R@1'], 100);
    assert.equal(r.textToImage!['R@1'], 100);
    await blip.dispose();
    await ensemble.dispose();
  });

  it('chooses weights on a split through the encoder --model loads', async () => {
    const ds = await colourDataset();
    const members = [
      { spec: CLIP, encoder: await loadEncoder(CLIP) },
      { spec: SIGLIP, encoder: await loadEncoder(SIGLIP) },
    ];
    const r = await sweepEnsemble(ds, members, [0.25, 0.75]);
    assert.equal(r.rows.length, 2);
    assert.deepEqual(r.rows[1]!.standardised, [0.75, 0.25]);
    // the spreads, recomputed here the plain way: every caption against every image
    const spreads: number[] = [];
    for (const m of members) {
      const t = await m.encoder.encodeTexts(ds.captions.map((c) => c.text));
      const v = await m.encoder.encodeImages(ds.images.map((i) => i.source));
      const all = t.flatMap((a) => v.map((b) => cos(a, b)));
      const mean = all.reduce((x, y) => x + y, 0) / all.length;
      spreads.push(Math.sqrt(all.reduce((x, y) => x + (y - mean) ** 2, 0) / all.length));
    }
    r.spreads.forEach((s, i) => assert.ok(Math.abs(s - spreads[i]!) < 1e-4, `spread ${i}: ${s} vs ${spreads[i]}`));
    // a standardised weight w is a raw weight w/σ: the spec of each row says so
    for (const row of r.rows) {
      const raw = row.standardised.map((w, i) => w / spreads[i]!);
      const sum = raw[0]! + raw[1]!;
      assert.equal(row.spec, ensembleSpec([{ spec: CLIP, weight: raw[0]! / sum }, { spec: SIGLIP, weight: raw[1]! / sum }]));
    }
    // the spec a row reports loads an ensemble that measures the same
    const again = await loadEncoder(r.best.spec);
    const direct = await evaluateRetrieval(ds, again);
    assert.deepEqual(direct.textToImage, r.best.textToImage);
    assert.deepEqual(direct.imageToText, r.best.imageToText);
    await again.dispose();
    for (const m of members) await m.encoder.dispose();
  });
});
