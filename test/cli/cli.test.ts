import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { ExactStore } from '../../src/index/exact-store.js';
import { fixtureModelPath } from '../../src/models/load-encoder.js';
import { packageRoot } from '../../src/util/package-root.js';
import { COLOURS, tempDir, writeColourImage, runDuo } from '../helpers.js';

const BLIP = join(packageRoot(), 'models', 'colour-blip');
const run = (args: string[]) => runDuo(args);

describe('duo command line (the documented contract)', () => {
  const data = tempDir();
  const images = join(data, 'images');
  const index = join(data, 'colours.duo');
  const names = Object.keys(COLOURS);

  before(async () => {
    mkdirSync(images);
    await Promise.all(names.map((n) => writeColourImage(join(images, `${n}.jpg`), COLOURS[n]!)));
    writeFileSync(join(data, 'Flickr8k.token.txt'), names.flatMap((n) => [`${n}.jpg#0\ta ${n} square .`, `${n}.jpg#1\tsomething ${n}`]).join('\n'));
    writeFileSync(join(data, 'Flickr_8k.devImages.txt'), names.map((n) => `${n}.jpg`).join('\n'));
  });

  it('index <dir> --index <path> builds an index and reports it', async () => {
    const r = await run(['index', images, '--index', index, '--json', '--model', fixtureModelPath()]);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.equal(report.total, names.length);
    assert.equal(report.encoded, names.length);
    assert.ok(existsSync(index));
  });

  it('search "<text>" --json returns ranked results with latency', async () => {
    const saved = join(data, 'results.json');
    const r = await run(['search', 'a red thing', '--index', index, '--k', '3', '--json', '--save-results', saved]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.results.length, 3);
    assert.equal(out.results[0].id, 'red.jpg');
    assert.equal(out.results[0].rank, 1);
    assert.equal(out.results[0].path, join(images, 'red.jpg'));
    assert.ok(out.results[0].score > out.results[1].score);
    assert.ok(out.latencyMs.stage1 > 0);
    assert.equal(out.mode, "stage1");
    assert.deepEqual(JSON.parse(readFileSync(saved, 'utf8')), out);
  });

  it('search --image <file> finds the same image first, and prints a table without --json', async () => {
    const r = await run(['search', '--image', join(images, 'blue.jpg'), '--index', index, '--k', '2']);
    assert.equal(r.code, 0, r.stderr);
    const firstRow = r.stdout.split('\n').find((l) => /^\s*1\s/.test(l));
    assert.match(firstRow ?? '', /blue\.jpg/);
  });

  it('index-captions then search --image: image→text from a file or a dataset split', async () => {
    const captions = join(data, 'captions.txt');
    writeFileSync(captions, names.map((n) => `a ${n} square`).join('\n'));
    const captionIndex = join(data, 'captions.duo');
    const built = await run(['index-captions', captions, '--index', captionIndex, '--json', '--model', fixtureModelPath()]);
    assert.equal(built.code, 0, built.stderr);
    assert.equal(JSON.parse(built.stdout).total, names.length);
    const r = await run(['search', '--image', join(images, 'green.jpg'), '--index', captionIndex, '--k', '2', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).results[0].text, 'a green square');
    const fromData = await run(['index-captions', '--data', data, '--split', 'dev', '--index', join(data, 'dev-captions.duo'), '--json', '--model', fixtureModelPath()]);
    assert.equal(fromData.code, 0, fromData.stderr);
    assert.equal(JSON.parse(fromData.stdout).total, 2 * names.length);
    const both = await run(['index-captions', captions, '--data', data, '--index', join(data, 'x.duo')]);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /either a captions file or --data/);
  });

  it('eval --data <dir> --split <name> --json prints the documented object', async () => {
    const r = await run(['eval', '--data', data, '--split', 'dev', '--json', '--model', fixtureModelPath()]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    for (const dir of ['textToImage', 'imageToText']) {
      for (const key of ['R@1', 'R@5', 'R@10', 'MRR']) assert.equal(typeof out[dir][key], 'number', `${dir}.${key}`);
    }
    assert.equal(out.textToImage['R@1'], 100);
    assert.equal(out.imageToText['R@10'], 100);
    assert.equal(out.textToImage.MRR, 1);
    // each recall comes with its 95% interval over the split's images; a perfect model's has no spread
    assert.deepEqual(out.textToImage.interval95['R@1'], [100, 100]);
    assert.equal(out.textToImage.interval95.units, out.images);
    const table = await run(['eval', '--data', data, '--split', 'dev', '--model', fixtureModelPath()]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /R@10 95%/);
    assert.match(table.stdout, /text→image.*100\.0–100\.0/);
    assert.match(table.stdout, /bootstrap over the split's images/);
  });

  it('index --reranker records the cross-encoder: search --mode hybrid then needs no other flag', async () => {
    const hybridIndex = join(data, 'hybrid.duo');
    const built = await run(['index', images, '--index', hybridIndex, '--model', fixtureModelPath(), '--reranker', BLIP, '--json']);
    assert.equal(built.code, 0, built.stderr);
    const r = await run(['search', 'a blue square', '--index', hybridIndex, '--mode', 'hybrid', '--k1', '6', '--k', '3', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.mode, 'hybrid');
    assert.match(out.reranker, /colour-blip/);
    assert.equal(out.results[0].id, 'blue.jpg');
    assert.equal(out.results.length, 3);
    assert.ok(out.results.every((h: { stage2?: { score: number } }) => Number.isFinite(h.stage2?.score)));
    const table = await run(['search', 'a blue square', '--index', hybridIndex, '--mode', 'hybrid', '--k', '2']);
    assert.match(table.stdout, /stage 1 \(rank\).*stage 2 \(rank\)/, 'hybrid tables explain both stages');
    const plain = await run(['search', 'a blue square', '--index', index, '--mode', 'hybrid']);
    assert.equal(plain.code, 2);
    assert.match(plain.stderr, /--reranker.*records no cross-encoder/);
  });

  it('--explain, --where and --config: the file sets options, a flag wins, errors name the key or flag', async () => {
    const explained = await run(['search', 'red', '--index', index, '--k', '2', '--explain']);
    assert.match(explained.stdout, /stage 1 \(rank\)/);
    const config = join(data, 'duo.yaml');
    writeFileSync(config, `index: ${index}\nsearch:\n  k: 2\n  where: { bytes: { gt: 0 } }\n`);
    const fromFile = await run(['search', 'red', '--config', config, '--json']);
    assert.equal(fromFile.code, 0, fromFile.stderr);
    assert.equal(JSON.parse(fromFile.stdout).results.length, 2);
    const flagWins = await run(['search', 'red', '--config', config, '--k', '4', '--json']);
    assert.equal(JSON.parse(flagWins.stdout).results.length, 4);
    const filtered = await run(['search', 'red', '--index', index, '--where', 'bytes<1', '--json']);
    assert.deepEqual(JSON.parse(filtered.stdout).results, [], 'no file has under one byte');
    const some = await run(['search', 'something', '--index', index, '--k', '10', '--where', 'id=[red.jpg,blue.jpg]', '--json']);
    assert.deepEqual(JSON.parse(some.stdout).results.map((h: { id: string }) => h.id).sort(), ['blue.jpg', 'red.jpg']);
    writeFileSync(config, `index: ${index}\nsearch:\n  k: 0\n`);
    const badFile = await run(['search', 'red', '--config', config]);
    assert.equal(badFile.code, 2);
    assert.match(badFile.stderr, /duo\.yaml: search\.k:/);
    const badFlag = await run(['search', 'red', '--index', index, '--k', '0']);
    assert.match(badFlag.stderr, /^duo: --k: /, 'the flag as the user typed it');
  });

  it('--queries <file> --json: one JSON line per query, in order; a bad line gets an error line, the rest are answered', async () => {
    const file = join(data, 'queries.txt');
    writeFileSync(file, ['red', 'a blue thing', '', 'x'.repeat(3000), 'green'].join('\n'));
    const r = await run(['search', '--queries', file, '--index', index, '--k', '1', '--json']);
    assert.equal(r.code, 65, 'one query could not be answered');
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(lines.length, 4, 'blank lines are not queries');
    assert.deepEqual(lines.map((l) => l.results?.[0]?.id ?? l.error.code), ['red.jpg', 'blue.jpg', 'BAD_ARGUMENT', 'green.jpg']);
    assert.match(lines[2].error.message, /3000 characters/);
    assert.match(r.stderr, /1 of 4 queries/);
  });

  it('refuses an empty query, and a second writer while an index is being written', async () => {
    const empty = await run(['search', '  ', '--index', index]);
    assert.equal(empty.code, 2);
    assert.equal(empty.stderr.trim(), 'duo: query: is empty');
    const writer = await ExactStore.open(index, { write: true });
    try {
      const second = await run(['index', images, '--index', index, '--model', fixtureModelPath()]);
      assert.equal(second.code, 75);
      assert.match(second.stderr, /being written by another process/);
    } finally {
      await writer.close();
    }
  });

  it('embed on "many machines", import in one place: shards of a folder become one searchable index', async () => {
    const out = join(data, 'embeddings');
    for (const shard of ['1/2', '2/2']) {
      const r = await run(['embed', images, '--out', out, '--shard', shard, '--model', fixtureModelPath(), '--json']);
      assert.equal(r.code, 0, r.stderr);
    }
    const imported = join(data, 'imported.duo');
    const r = await run(['import', out, '--index', imported, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual([JSON.parse(r.stdout).imported, JSON.parse(r.stdout).total], [names.length, names.length]);
    const found = await run(['search', 'a yellow thing', '--index', imported, '--k', '1', '--json']);
    assert.equal(JSON.parse(found.stdout).results[0].id, 'yellow.jpg');
    const other = await run(['import', '--vectors', join(out, 'shard-1-of-2.npy'), '--ids', join(out, 'shard-1-of-2.ids.txt'), '--model', join(packageRoot(), 'models', 'starter'), '--index', join(data, 'wrong.duo')]);
    assert.equal(other.code, 65);
    assert.match(other.stderr, /shard-1-of-2\.npy \(for model starter@[0-9a-f]+\[[0-9.,]+\]\+qb10\): expected vectors of dimension 512, got 8/);
    assert.equal(existsSync(join(data, 'wrong.duo')), false, 'nothing was created');
  });

  it('eval --mode hybrid runs the engine with the cross-encoder and reports both stages', async () => {
    const r = await run(['eval', '--data', data, '--split', 'dev', '--mode', 'hybrid', '--reranker', BLIP, '--model', fixtureModelPath(), '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.textToImage['R@1'], 100);
    assert.equal(out.stage1.textToImage['R@1'], 100);
    assert.equal(out.imageToText['R@1'], 100);
    assert.deepEqual(out.configs[0].vsStage1.textToImage['R@1'], { diff: 0, interval: [0, 0] }, 'hybrid against stage 1 on the same queries');
    assert.ok(out.latencyMs.stage2.p50 > 0);
  });

  it('eval --compare a b: b − a per metric, with paired 95% intervals where both runs kept their per-query records', async () => {
    const dirs = ['a', 'b'].map((n) => join(tempDir(), n));
    // 20 images, one caption each; b ranks images 0–9 first where a ranked them fifth
    const metrics = (r1: number) => ({ 'R@1': r1, 'R@5': 100, 'R@10': 100, 'R@20': 100, MRR: 0, mAP: 0, 'P@1': 0, 'P@5': 0, 'P@10': 0, medianRank: 1, queries: 20 });
    [50, 100].forEach((r1, d) => {
      mkdirSync(dirs[d]!);
      writeFileSync(join(dirs[d]!, 'report.json'), JSON.stringify({ stage1: { textToImage: metrics(r1) }, hybrid: [] }));
      const rank = (i: number) => (i < 10 && d === 0 ? 5 : 1);
      writeFileSync(join(dirs[d]!, 'per-query.jsonl'), Array.from({ length: 20 }, (_, i) => JSON.stringify({ direction: 'textToImage', query: `q${i}`, relevant: [`img${i}`], stage1: rank(i), hybrid: {} })).join('\n'));
    });
    const paired = await run(['eval', '--compare', dirs[0]!, dirs[1]!]);
    assert.equal(paired.code, 0, paired.stderr);
    assert.match(paired.stdout, /stage 1 .*text→image .*R@1 .*50\.0000 .*100\.0000 .*\+50\.0000 .*\+\d+\.\d to \+\d+\.\d/);
    assert.match(paired.stdout, /a difference is paired: both rankings resampled by the same draw/);
    writeFileSync(join(dirs[1]!, 'per-query.jsonl'), '{"direction":"textToImage","query":"other","relevant":["img0"],"stage1":1,"hybrid":{}}\n');
    const unpaired = await run(['eval', '--compare', dirs[0]!, dirs[1]!]);
    assert.equal(unpaired.code, 0, unpaired.stderr);
    assert.match(unpaired.stdout, /no intervals: .*per-query\.jsonl.*ranked 20 and 1 queries/);
    // a report given as a JSON file not named report.json has no records beside it; a folder without them says so
    writeFileSync(join(dirs[1]!, 'copy.json'), readFileSync(join(dirs[1]!, 'report.json')));
    const byFile = await run(['eval', '--compare', join(dirs[0]!, 'report.json'), join(dirs[1]!, 'copy.json')]);
    assert.equal(byFile.code, 0, byFile.stderr);
    assert.match(byFile.stdout, /\+50\.0000/);
    assert.match(byFile.stdout, /no intervals: .*copy\.json is not named report\.json/);
    rmSync(join(dirs[1]!, 'per-query.jsonl'));
    const missing = await run(['eval', '--compare', dirs[0]!, dirs[1]!]);
    assert.match(missing.stdout, /no intervals: no .*b\/per-query\.jsonl/);
  });

  it('errors: one line naming the file or flag, non-zero exit, no stack unless --debug', async () => {
    const missing = await run(['search', 'red', '--index', join(data, 'nope.duo')]);
    assert.equal(missing.code, 66);
    assert.match(missing.stderr, /nope\.duo/);
    assert.equal(missing.stderr.trim().split('\n').length, 1);
    assert.doesNotMatch(missing.stderr, /\n\s+at /);

    const badK = await run(['search', 'red', '--index', index, '--k', 'ten']);
    assert.equal(badK.code, 2);
    assert.match(badK.stderr, /--k/);

    const both = await run(['search', 'red', '--image', join(images, 'red.jpg'), '--index', index]);
    assert.equal(both.code, 2);

    const badSplit = await run(['eval', '--data', data, '--split', 'test']);
    assert.notEqual(badSplit.code, 0);
    assert.match(badSplit.stderr, /Flickr_8k\.testImages\.txt/);

    const unknown = await run(['index', images, '--index', index, '--frobnicate']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /--frobnicate/);

    const debug = await run(['search', 'red', '--index', join(data, 'nope.duo'), '--debug']);
    assert.match(debug.stderr, /\n\s+at /);
  });
});
