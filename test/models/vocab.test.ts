import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UNK, Vocabulary } from '../../src/models/starter/vocab.js';

describe('starter vocabulary', () => {
  const captions = ['A red shirt and a blue car.', 'a red shirt', 'the blue car', 'a red car'];

  it('keeps words seen minCount times, most frequent first, unknown words dropped', () => {
    const v = Vocabulary.build(captions, 2);
    // a ×5; red, car ×3 (ties in alphabetical order); blue, shirt ×2
    assert.deepEqual(v.tokens, [UNK, 'a', 'car', 'red', 'blue', 'shirt']);
    assert.deepEqual([...v.encode('A RED bike')], [1, 3]);
    assert.deepEqual([...v.encode('zebra')], [0], 'a caption with no known word is [UNK], never empty');
  });

  it('says which words it reads and which it drops, as encode reads them', () => {
    const v = Vocabulary.build(captions, 2);
    assert.deepEqual(v.coverage('A RED bike, a red car!'), { known: ['a', 'red', 'car'], unknown: ['bike'] });
    assert.deepEqual(v.coverage('zebra crossing'), { known: [], unknown: ['zebra', 'crossing'] });
    assert.deepEqual(v.coverage('?!'), { known: [], unknown: [] });
    assert.deepEqual(v.coverage(`${'zebra '.repeat(64)}car`), { known: [], unknown: ['zebra'] }, 'past 64 words, encode reads nothing either');
  });

  it('adds frequent word pairs as tokens after the words; encode appends the pairs it knows', () => {
    const v = Vocabulary.build(captions, 2).withPairs(captions, 2);
    assert.deepEqual(v.tokens.slice(6), ['a red', 'blue car', 'red shirt']);
    // words a, red, car, then the pairs: "a red" is known, "red car" (seen once) is not
    assert.deepEqual([...v.encode('a red car')], [1, 3, 2, 6]);
    assert.deepEqual([...v.encode('red shirt')], [3, 5, 8]);
    assert.deepEqual(v.withPairs(captions, 3).tokens.slice(6), ['a red'], 'pairs are rebuilt, not stacked');
  });
});
