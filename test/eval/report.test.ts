import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { writeFileSync } from 'node:fs';
import { changes, compareReports, pairedDifferences, readQueryRecords, runReport } from '../../src/eval/report.js';
import type { QueryRecord } from '../../src/eval/hybrid-eval.js';
import { BlipItmReranker } from '../../src/models/blip/blip-itm.js';
import { fixtureModelPath, loadEncoder } from '../../src/models/load-encoder.js';
import { packageRoot } from '../../src/util/package-root.js';
import { colourDataset, tempDir } from '../helpers.js';

describe('evaluation report', () => {
  it('writes JSON, Markdown, per-query records and charts, and compares two runs', async () => {
    const ds = await colourDataset((n) => [`a ${n} square`, `a ${n} photo`]);
    const dir = tempDir();
    const encoder = await loadEncoder(fixtureModelPath());
    const blip = await BlipItmReranker.load(join(packageRoot(), 'models', 'colour-blip'));
    const out = join(dir, 'run-a');
    const report = await runReport(ds, encoder, blip, { outDir: out, k1s: [2, 4], fusions: ['replace', 'rrf'], alpha: 0.5, ceSubset: 3, describe: { command: 'test' } });
    for (const f of ['report.json', 'report.md', 'per-query.jsonl', 'recall-at-k.png', 'recall-vs-k1.png', 'latency.png']) assert.ok(existsSync(join(out, f)), f);
    const json = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    assert.equal(json.hybrid.length, 4);
    assert.equal(json.stage1.textToImage['R@1'], 100);
    assert.equal(json.stage1.imageToText.mAP, 1, 'both captions of every image rank first and second');
    assert.ok(json.peakRssMiB > 0);
    assert.ok(json.latencyMs.stage2.p50 > 0, "stage 2 was timed");
    const md = readFileSync(join(out, 'report.md'), 'utf8');
    assert.match(md, /\| stage 1 \| 100\.00 \|/);
    assert.match(md, /hybrid k1=4 rrf/);
    assert.match(md, /\| stage 1 \| 100\.00 \| 100\.00 \| 100\.00 \| 100\.0–100\.0 \|/, 'R@10 with its 95% interval');
    assert.match(md, /\| k1=4 rrf \| [+-]\d+\.\d\d \([+-]\d+\.\d to [+-]\d+\.\d\) \|/, 'each config against stage 1, paired');
    assert.match(md, /Cross-encoder alone over all candidates/);
    const lines = readFileSync(join(out, 'per-query.jsonl'), 'utf8').trim().split('\n');
    assert.equal(lines.length, ds.captions.length + ds.images.length);
    assert.deepEqual(Object.keys(JSON.parse(lines[0]!).hybrid).sort(), ['k1=2 replace', 'k1=2 rrf', 'k1=4 replace', 'k1=4 rrf']);
    const same = compareReports(report, json);
    assert.ok(same.length > 0 && same.every((r) => r.delta === 0));
    // paired against itself from its per-query records: every difference 0, with no spread, on the recall rows only
    const records = readQueryRecords(join(out, 'per-query.jsonl'));
    const paired = compareReports(report, json, pairedDifferences(records, records));
    assert.deepEqual(paired.filter((r) => r.metric === 'R@10').map((r) => r.interval), paired.filter((r) => r.metric === 'R@10').map(() => [0, 0]));
    assert.equal(paired.filter((r) => r.metric === 'R@10').length, 2 * 5, 'stage 1 and four hybrid rows, both directions');
    assert.ok(paired.filter((r) => r.metric === 'MRR').every((r) => r.interval === undefined));
    await blip.dispose();
    await encoder.dispose();
  });

  it("pairs two runs' per-query records: b − a per mode with the interval of the paired difference", () => {
    // 40 images, two captions each; run b fixes stage 1 for every fourth image and never ranked one caption of a
    const rec = (i: number, stage1: number, hybrid: number): QueryRecord => ({ direction: 'textToImage', query: `caption ${i}`, relevant: [`img${i >> 1}`], stage1, hybrid: { 'k1=10 weighted': hybrid } });
    const a = Array.from({ length: 80 }, (_, i) => rec(i, i === 0 ? Infinity : 1 + (i % 3) * 6, 1 + (i % 3) * 6));
    const b = a.map((q, i) => rec(i, (i >> 1) % 4 === 0 ? 1 : q.stage1, q.hybrid['k1=10 weighted']!));
    const file = join(tempDir(), 'per-query.jsonl');
    writeFileSync(file, a.map((q) => JSON.stringify(q)).join('\n') + '\n');
    const back = readQueryRecords(file);
    assert.equal(back[0]!.stage1, Infinity, 'null (JSON has no Infinity) reads back as never ranked');
    const d = pairedDifferences(back, b);
    const s1 = d.get('stage 1|textToImage')!;
    // a finds R@1 for i % 3 == 0 (27 of 80, less the unranked caption 0: 26); b also for the 20 captions of images 0, 4, 8, …, 36,
    // of which a had 6 (captions 9, 24, 33, 48, 57, 72): 14 more
    assert.equal(s1['R@1'].diff, (100 * 14) / 80);
    assert.ok(s1['R@1'].interval[0] > 0 && s1['R@1'].interval[1] > s1['R@1'].diff);
    assert.deepEqual(d.get('hybrid k1=10 weighted|textToImage')!['R@10'], { diff: 0, interval: [0, 0] });
    assert.equal(s1.units, 40, 'the images are resampled, not the captions');
    assert.throws(() => pairedDifferences(a, b.slice(1)), /ranked 80 and 79 queries/);
    assert.throws(() => pairedDifferences([], []), /no per-query records/);
    assert.throws(() => pairedDifferences(a, b.map((q, i) => (i === 5 ? { ...q, hybrid: {} } : q))), /query 6 \("caption 5"\) has no rank under k1=10 weighted/);
    // image→text: the query is the image, each its own unit
    const i2t = (i: number, stage1: number): QueryRecord => ({ direction: 'imageToText', query: `img${i}`, relevant: [`c${i}`], stage1, hybrid: {} });
    const back2 = pairedDifferences(Array.from({ length: 10 }, (_, i) => i2t(i, 2)), Array.from({ length: 10 }, (_, i) => i2t(i, i < 3 ? 1 : 2))).get('stage 1|imageToText')!;
    assert.deepEqual([back2.units, back2['R@1'].diff, back2['R@5'].diff], [10, 30, 0]);
    // records that are not the reports' own are refused rather than given an interval that does not fit the difference
    const m = (r1: number) => ({ 'R@1': r1, 'R@5': 50, 'R@10': 50, MRR: 0, mAP: 0 });
    const report = (r1: number) => ({ stage1: { textToImage: m(r1) }, hybrid: [] });
    assert.throws(() => compareReports(report(10), report(20), d), /stage 1 text→image R@1 b − a = 17\.5000, the reports 10\.0000/);
    assert.throws(() => pairedDifferences(a, [b[1]!, b[0]!, ...b.slice(2)]), /query 1 differs: "caption 0" and "caption 1"/);
  });

  it('counts the queries stage 2 fixed and broke at K', () => {
    const q = (stage1: number, hybrid: number) => ({ direction: 'textToImage' as const, query: 'q', relevant: ['x'], stage1, hybrid: { m: hybrid } });
    const { fixed, broken } = changes([q(3, 1), q(1, 2), q(1, 1), q(5, 4)], 'm', 1);
    assert.equal(fixed.length, 1);
    assert.equal(broken.length, 1);
  });
});
