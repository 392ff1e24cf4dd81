import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { averagePrecision, firstRelevantRank, fullMetrics, meanReciprocalRank, medianRank, precisionAt, rankMetrics, recallAt, relevantRanks } from '../../src/eval/metrics.js';

describe('rank metrics on hand-computed cases', () => {
  const ranks = [1, 2, 5, 11, Infinity];
  it('Recall@K is the percent of queries ranked within K', () => {
    assert.equal(recallAt(ranks, 1), 20);
    assert.equal(recallAt(ranks, 5), 60);
    assert.equal(recallAt(ranks, 10), 60);
    assert.equal(recallAt([], 5), 0);
  });
  it('MRR averages 1/rank, a missing item counting 0', () => {
    assert.ok(Math.abs(meanReciprocalRank(ranks) - (1 + 0.5 + 0.2 + 1 / 11 + 0) / 5) < 1e-12);
  });
  it('median rank, odd and even counts', () => {
    assert.equal(medianRank(ranks), 5);
    assert.equal(medianRank([1, 2, 3, 10]), 2.5);
    assert.equal(medianRank([4, Infinity]), Infinity);
  });
  it('rankMetrics bundles them', () => {
    const m = rankMetrics([1, 3]);
    assert.deepEqual(m, { 'R@1': 50, 'R@5': 100, 'R@10': 100, MRR: (1 + 1 / 3) / 2, medianRank: 2, queries: 2 });
  });
});

describe('firstRelevantRank', () => {
  it('ranks the best relevant item among the irrelevant ones', () => {
    const scores = Float32Array.from([0.9, 0.1, 0.5, 0.7, 0.3]);
    assert.equal(firstRelevantRank(scores, [2]), 3); // 0.9 and 0.7 ahead
    assert.equal(firstRelevantRank(scores, [4, 3]), 2); // best relevant 0.7; only 0.9 ahead
    assert.equal(firstRelevantRank(scores, [0]), 1);
  });
  it('counts ties against the query: an all-equal model gets the worst rank', () => {
    const flat = new Float32Array(100).fill(0.5);
    assert.equal(firstRelevantRank(flat, [0]), 100);
    assert.equal(firstRelevantRank(flat, [0, 1, 2, 3, 4]), 96);
    assert.equal(firstRelevantRank(Float32Array.from([0.2, 0.5, 0.5]), [1]), 2);
  });
  it('a query with no relevant items ranks Infinity', () => {
    assert.equal(firstRelevantRank(Float32Array.from([1, 2]), []), Infinity);
  });
});

describe('ranks of every relevant item, mAP and precision', () => {
  it('ranks each relevant item, ties against the query, missing ones at Infinity', () => {
    const scores = Float32Array.from([0.9, 0.5, 0.7, 0.5, 0.1]);
    assert.deepEqual(relevantRanks(scores, [1, 2]), [2, 4]); // 0.7 behind 0.9; 0.5 behind 0.9, 0.7 and the tied irrelevant 0.5
    assert.deepEqual(relevantRanks(scores, [1, 3]), [3, 3]); // two relevant items tied with each other do not push each other down
    assert.deepEqual(relevantRanks(scores, [7]), [Infinity]);
  });
  it('average precision: hand-computed cases', () => {
    assert.equal(averagePrecision([1, 2, 3]), 1);
    assert.ok(Math.abs(averagePrecision([2, 4]) - (1 / 2 + 2 / 4) / 2) < 1e-12);
    assert.ok(Math.abs(averagePrecision([1, Infinity]) - 0.5) < 1e-12); // one never retrieved counts 0
    assert.equal(averagePrecision([3, 3]), (1 / 3 + 2 / 3) / 2); // ties: the second shares rank 3
  });
  it('precision@K and the full metric set', () => {
    assert.equal(precisionAt([1, 4, 12], 5), 2 / 5);
    const m = fullMetrics([[1, 3], [2], [Infinity]]);
    assert.ok(Math.abs(m['R@1'] - 100 / 3) < 1e-9);
    assert.ok(Math.abs(m.mAP - ((1 + 2 / 3) / 2 + 1 / 2 + 0) / 3) < 1e-12);
    assert.ok(Math.abs(m['P@5'] - (100 * (2 / 5 + 1 / 5 + 0)) / 3) < 1e-9);
    assert.equal(m.medianRank, 2);
  });
  it('mAP differs from MRR when an image has several captions', () => {
    const m = fullMetrics([[1, 10, 20, 30, 40]]);
    assert.equal(m.MRR, 1);
    assert.ok(m.mAP < 0.5);
  });
});
