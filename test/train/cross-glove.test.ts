/** Cross-encoder token rows started from GloVe (duo train-cross --init-glove). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { gloveTokens } from '../../src/train/cross-init.js';

const cos = (a: Float32Array, b: Float32Array) => a.reduce((s, x, i) => s + x * b[i]!, 0) / (Math.hypot(...a) * Math.hypot(...b));

describe('gloveTokens', () => {
  it('words and word pairs GloVe knows start from it, the rest at random, every row as long as a random start', async () => {
    const tokens = ['[UNK]', 'dog', 'puppy', 'car', 'red', 'shirt', 'red shirt', 'qzxvw', 'red qzxvw'];
    const dim = 32;
    const { table, found } = await gloveTokens(tokens, dim, 1);
    assert.equal(found, 6, 'dog, puppy, car, red, shirt and "red shirt"');
    const row = (t: string) => table.subarray(tokens.indexOf(t) * dim, (tokens.indexOf(t) + 1) * dim);
    for (const t of tokens) assert.ok(Math.abs(Math.hypot(...row(t)) - 0.3) < 1e-5, `${t}: length ${Math.hypot(...row(t))}`);
    assert.ok(cos(row('dog'), row('puppy')) > cos(row('dog'), row('car')) + 0.1, 'neighbours in GloVe stay neighbours');
    assert.ok(cos(row('red shirt'), row('red')) > 0.5 && cos(row('red shirt'), row('shirt')) > 0.5, 'a pair lies between its words');
    assert.ok(Math.abs(cos(row('qzxvw'), row('red qzxvw'))) < 0.9, 'unknown words and pairs with one are random rows of their own');
    const again = await gloveTokens(tokens, dim, 1);
    assert.deepEqual(again.table, table, 'seeded');
  });
});
