import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { changes, compareReports, runReport } from '../../src/eval/report.js';
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
    assert.match(md, /Cross-encoder alone over all candidates/);
    const lines = readFileSync(join(out, 'per-query.jsonl'), 'utf8').trim().split('\n');
    assert.equal(lines.length, ds.captions.length + ds.images.length);
    assert.deepEqual(Object.keys(JSON.parse(lines[0]!).hybrid).sort(), ['k1=2 replace', 'k1=2 rrf', 'k1=4 replace', 'k1=4 rrf']);
    const same = compareReports(report, json);
    assert.ok(same.length > 0 && same.every((r) => r.delta === 0));
    await blip.dispose();
    await encoder.dispose();
  });

  it('counts the queries stage 2 fixed and broke at K', () => {
    const q = (stage1: number, hybrid: number) => ({ direction: 'textToImage' as const, query: 'q', relevant: ['x'], stage1, hybrid: { m: hybrid } });
    const { fixed, broken } = changes([q(3, 1), q(1, 2), q(1, 1), q(5, 4)], 'm', 1);
    assert.equal(fixed.length, 1);
    assert.equal(broken.length, 1);
  });
});
