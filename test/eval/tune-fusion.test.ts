import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { main } from '../../src/cli/main.js';
import { chooseAlpha } from '../../src/eval/metrics.js';
import { pickAlpha, type TuneFusionResult } from '../../src/eval/tune-fusion.js';
import { StarterCrossEncoder } from '../../src/models/starter/starter-cross-encoder.js';
import { packWithCross } from '../models/cross-pack.js';
import { COLOURS, tempDir, writeColourImage } from '../helpers.js';

/** A Flickr8k folder in its original layout: one colour image per colour, two captions each, all in split "dev". */
async function tinyFlickr8k(): Promise<string> {
  const dir = tempDir();
  mkdirSync(join(dir, 'images'));
  const names = Object.keys(COLOURS);
  await Promise.all(names.map((n) => writeColourImage(join(dir, 'images', `${n}.jpg`), COLOURS[n]!)));
  writeFileSync(join(dir, 'Flickr8k.token.txt'), names.flatMap((n) => [`${n}.jpg#0\ta ${n} square`, `${n}.jpg#1\ttwo black dogs on a red shirt`]).join('\n'));
  writeFileSync(join(dir, 'Flickr_8k.devImages.txt'), names.map((n) => `${n}.jpg`).join('\n'));
  return dir;
}

/** Runs the CLI in this process; its stdout and stderr, and the exit status. */
async function duo(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = console.log;
  const write = process.stderr.write.bind(process.stderr);
  console.log = (...xs: unknown[]) => out.push(xs.join(' '));
  process.stderr.write = ((s: string | Uint8Array) => err.push(String(s)) > 0) as typeof process.stderr.write;
  try {
    const code = await main(args);
    return { code, stdout: out.join('\n'), stderr: err.join('') };
  } finally {
    console.log = log;
    process.stderr.write = write;
  }
}

/** The test's own choice: best R@1 + R@5 + R@10, then best R@1, then the smallest α. */
const best = (rows: TuneFusionResult['rows']) => [...rows].sort((a, b) => b.rsum - a.rsum || b['R@1'] - a['R@1'] || a.alpha - b.alpha)[0]!.alpha;

describe('duo tune-fusion', () => {
  it('writes the best α of the sweep per direction into the pack, and nothing with --dry-run', async () => {
    const pack = await packWithCross();
    const data = await tinyFlickr8k();
    const manifestFile = join(pack, 'manifest.json');
    const before = readFileSync(manifestFile, 'utf8');
    const idBefore = (await StarterCrossEncoder.load(pack)).id;
    // the choice by rsum alone here; the guard on other k1 has a test of its own
    const args = ['tune-fusion', '--pack', pack, '--data', data, '--split', 'dev', '--k1', '3', '--alphas', '0,0.25,0.5,0.75,1', '--guard-k1', '', '--json'];

    const dry = await duo([...args, '--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
    const sweep = JSON.parse(dry.stdout) as TuneFusionResult;
    assert.equal(sweep.written, false);
    assert.equal(readFileSync(manifestFile, 'utf8'), before, '--dry-run writes nothing');
    assert.deepEqual(sweep.grid, [0, 0.25, 0.5, 0.75, 1]);
    assert.equal(sweep.rows.length, 10, 'one row per α and direction');
    assert.deepEqual(sweep.queries, { textToImage: 12, imageToText: 6 });
    assert.deepEqual(sweep.previous, { textToImage: 0.7, imageToText: 0.7 });
    // α = 0 is stage 1's order
    for (const d of ['textToImage', 'imageToText'] as const) assert.equal(sweep.rows.find((r) => r.direction === d && r.alpha === 0)!.rsum, sweep.stage1[d].rsum);

    const run = await duo(args);
    assert.equal(run.code, 0, run.stderr);
    const r = JSON.parse(run.stdout) as TuneFusionResult;
    assert.equal(r.written, true);
    assert.deepEqual(r.rows, sweep.rows, 'the same sweep');
    const t2i = best(r.rows.filter((x) => x.direction === 'textToImage'));
    const i2t = best(r.rows.filter((x) => x.direction === 'imageToText'));
    const fusion = (JSON.parse(readFileSync(manifestFile, 'utf8')) as { crossEncoder: { fusion: Record<string, unknown> } }).crossEncoder.fusion;
    assert.equal(fusion.mode, 'weighted');
    assert.equal(fusion.alpha, t2i);
    assert.equal(fusion.alphaImageToText, i2t);
    const chosen = fusion.chosen as Record<string, unknown>;
    assert.equal(chosen.split, 'dev');
    assert.equal(chosen.k1, 3);
    assert.deepEqual(chosen.grid, [0, 0.25, 0.5, 0.75, 1]);
    assert.match(String(chosen.command), /^duo /);
    assert.ok(!Number.isNaN(Date.parse(String(chosen.date))));
    // the engine reads them back per direction; the model's id does not change (indexes stay valid)
    const reranker = await StarterCrossEncoder.load(pack);
    assert.deepEqual(reranker.fusionAlpha, { textToImage: t2i, imageToText: i2t });
    assert.equal(reranker.id, idBefore);
    await reranker.dispose();
  });

  it('refuses a pack without a cross-encoder, naming --pack and the file', async () => {
    const pack = tempDir();
    writeFileSync(join(pack, 'manifest.json'), JSON.stringify({ format: 'duo-starter-pack', version: 1 }));
    const r = await duo(['tune-fusion', '--pack', pack, '--data', pack, '--dry-run']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--pack: .*has no cross-encoder .*manifest\.json/);
    const none = await duo(['tune-fusion', '--pack', join(pack, 'missing'), '--data', pack]);
    assert.equal(none.code, 66);
    assert.match(none.stderr, /missing[/\\]manifest\.json/);
  });

  it('refuses a manifest.json that is not JSON, naming the file', async () => {
    const pack = tempDir();
    writeFileSync(join(pack, 'manifest.json'), '{ "crossEncoder": ');
    const r = await duo(['tune-fusion', '--pack', pack, '--data', pack, '--dry-run']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /manifest\.json.*not JSON/);
  });

  it('--guard-k1: every row carries R@1 at the other k1, and the α chosen keeps R@1 above stage 1 at all of them when one does', async () => {
    const pack = await packWithCross();
    const data = await tinyFlickr8k();
    const r = await duo(['tune-fusion', '--pack', pack, '--data', data, '--split', 'dev', '--k1', '3', '--guard-k1', '2,5', '--alphas', '0,0.25,0.5,0.75,1', '--dry-run', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const sweep = JSON.parse(r.stdout) as TuneFusionResult;
    assert.deepEqual(sweep.guardK1, [2, 5]);
    // the R@1 each row reports at a guard k1 is what `duo eval --mode hybrid` measures at that k1 and α
    const evaluated = await duo(['eval', '--data', data, '--split', 'dev', '--model', pack, '--reranker', pack, '--mode', 'hybrid', '--k1', '2,5', '--fusion', 'weighted', '--alpha', '0,0.25,0.5,0.75,1', '--json']);
    assert.equal(evaluated.code, 0, evaluated.stderr);
    const configs = (JSON.parse(evaluated.stdout) as { configs: { k1: number; alpha: number; textToImage: { 'R@1': number }; imageToText: { 'R@1': number } }[] }).configs;
    for (const row of sweep.rows) {
      assert.deepEqual(Object.keys(row.guardR1!).map(Number), [2, 5]);
      for (const k of [2, 5]) {
        const c = configs.find((x) => x.k1 === k && x.alpha === row.alpha)!;
        assert.equal(row.guardR1![k], c[row.direction]['R@1'], `${row.direction} α ${row.alpha} k1 ${k}`);
      }
      const r1s = [row['R@1'], row.guardR1![2]!, row.guardR1![5]!];
      assert.equal(row.aboveStage1, r1s.every((x) => x > sweep.stage1[row.direction]['R@1']), `${row.direction} α ${row.alpha}`);
    }
    for (const d of ['textToImage', 'imageToText'] as const) {
      const rows = sweep.rows.filter((x) => x.direction === d);
      assert.equal(sweep.guardMet[d], rows.some((x) => x.aboveStage1));
      assert.equal(sweep.chosen[d], best(sweep.guardMet[d] ? rows.filter((x) => x.aboveStage1) : rows));
    }
    const bad = await duo(['tune-fusion', '--pack', pack, '--data', data, '--guard-k1', '50,x', '--dry-run']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--guard-k1/);
  });

  it('pickAlpha: the best rsum among the α that keep R@1 above stage 1 at every k1, or among all when none does', () => {
    const row = (alpha: number, r1: number, rsum: number, aboveStage1: boolean) => ({ alpha, 'R@1': r1, rsum, aboveStage1 });
    assert.deepEqual(pickAlpha([row(0.3, 25.7, 143.8, false), row(0.4, 25.9, 143.5, true), row(0.2, 25.3, 143.2, false)]), { alpha: 0.4, guardMet: true });
    assert.deepEqual(pickAlpha([row(0.3, 25.7, 143.8, false), row(0.4, 25.9, 143.5, false)]), { alpha: 0.3, guardMet: false });
  });

  it('chooses by R@1 + R@5 + R@10; ties go to the higher R@1, then to the smaller α', () => {
    const row = (alpha: number, r1: number, rsum: number) => ({ alpha, 'R@1': r1, rsum });
    assert.equal(chooseAlpha([row(0.3, 10, 100), row(0.5, 12, 101), row(0.7, 20, 99)]), 0.5);
    assert.equal(chooseAlpha([row(0.3, 10, 100), row(0.5, 12, 100)]), 0.5);
    assert.equal(chooseAlpha([row(0.7, 12, 100), row(0.5, 12, 100), row(0.6, 12, 100)]), 0.5);
  });
});
