import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { firstRelevantRank, meanReciprocalRank, medianRank, rankMetrics, recallAt } from '../../src/eval/metrics.js';

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
