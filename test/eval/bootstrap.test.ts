import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { recallDifference, recallIntervals } from '../../src/eval/bootstrap.js';
import { recallAt } from '../../src/eval/metrics.js';

const width = (i: [number, number]) => i[1] - i[0];

describe('bootstrap intervals of Recall@K', () => {
  it('a proportion of 1,000 independent queries: the interval is the textbook ±1.96·√(p(1−p)/n)', () => {
    const ranks = Array.from({ length: 1000 }, (_, q) => (q % 2 === 0 ? 1 : 50)); // R@1 = R@5 = R@10 = 50
    const ci = recallIntervals(ranks, ranks.map((_, q) => q));
    // 1.96 · √(0.25 / 1000) = 3.10 points; a bootstrap of 1,000 resamples lands within half a point of it
    assert.ok(Math.abs(ci['R@1'][0] - (50 - 3.1)) < 0.5, `lower ${ci['R@1'][0]}`);
    assert.ok(Math.abs(ci['R@1'][1] - (50 + 3.1)) < 0.5, `upper ${ci['R@1'][1]}`);
    assert.deepEqual(ci['R@10'], ci['R@1'], 'the same queries succeed at 1 and at 10');
    assert.equal(ci.resamples, 1000);
    assert.equal(ci.units, 1000);
  });

  it('a split every query gets right (or wrong) has no spread', () => {
    const hit = recallIntervals([1, 1, 2, 3], ['a', 'a', 'b', 'c']);
    assert.deepEqual(hit['R@5'], [100, 100]);
    assert.ok(hit['R@1'][0] < 50 && hit['R@1'][1] === 100, 'R@1 = 50 over three images with two of them missing it');
    assert.deepEqual(recallIntervals([Infinity, 20], [0, 1])['R@10'], [0, 0]);
  });

  it('resamples images, not captions: five captions that succeed together widen the interval by about √5', () => {
    // 400 images, five captions each; an image's five captions share their outcome
    const ranks = Array.from({ length: 2000 }, (_, q) => ((q / 5) % 3 < 1 ? 1 : 40));
    const byImage = recallIntervals(ranks, ranks.map((_, q) => Math.floor(q / 5)));
    const byCaption = recallIntervals(ranks, ranks.map((_, q) => q));
    assert.equal(byImage.units, 400);
    const ratio = width(byImage['R@1']) / width(byCaption['R@1']);
    assert.ok(ratio > 1.8 && ratio < 2.8, `width ratio ${ratio.toFixed(2)} (√5 = 2.24)`);
    for (const ci of [byImage, byCaption]) assert.ok(ci['R@1'][0] < recallAt(ranks, 1) && recallAt(ranks, 1) < ci['R@1'][1]);
  });

  it('the same ranks and seed draw the same interval; another seed draws another', () => {
    const ranks = Array.from({ length: 300 }, (_, q) => 1 + ((q * 7) % 13));
    const units = ranks.map((_, q) => q >> 2);
    assert.deepEqual(recallIntervals(ranks, units), recallIntervals(ranks, units));
    assert.notDeepEqual(recallIntervals(ranks, units, { seed: 2 })['R@5'], recallIntervals(ranks, units)['R@5']);
    assert.equal(recallIntervals(ranks, units, { resamples: 50 }).resamples, 50);
  });

  it('a paired difference: exact at the point, and far narrower than either side alone when the two share most outcomes', () => {
    // 500 images; the baseline finds 40% at rank 1; the other ranking also fixes every 20th image
    const base = Array.from({ length: 500 }, (_, q) => (q % 5 < 2 ? 1 : 30));
    const better = base.map((r, q) => (q % 20 === 2 ? 1 : r));
    const units = base.map((_, q) => q);
    const d = recallDifference(better, base, units);
    assert.ok(Math.abs(d['R@1'].diff - (recallAt(better, 1) - recallAt(base, 1))) < 1e-9);
    assert.equal(d['R@1'].diff, 5); // 25 of 500 queries
    assert.ok(d['R@1'].interval[0] > 0, `every resample keeps the gain: ${d['R@1'].interval}`);
    assert.ok(width(d['R@1'].interval) < width(recallIntervals(better, units)['R@1']) / 2);
    assert.deepEqual(recallDifference(base, base, units)['R@10'], { diff: 0, interval: [0, 0] });
  });

  it('refuses ranks and labels that do not line up, and too few resamples', () => {
    assert.throws(() => recallIntervals([1, 2], ['a']), /2 ranks for 1 unit labels/);
    assert.throws(() => recallDifference([1, 2], [1], ['a', 'b']), /2 ranks against 1 baseline ranks/);
    assert.throws(() => recallIntervals([1], ['a'], { resamples: 1 }), /resamples must be an integer ≥ 2, got 1/);
    assert.throws(() => recallIntervals([1], ['a'], { resamples: 1.5 }), /resamples must be an integer ≥ 2, got 1\.5/);
    assert.throws(() => recallIntervals([], []), /no queries to resample/);
  });
});
