import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig, searchOptions } from '../../src/cli/config.js';
import { DuoError } from '../../src/errors.js';

const fails = (text: string, re: RegExp) =>
  assert.throws(() => parseConfig(text, 'duo.yaml'), (e: unknown) => e instanceof DuoError && e.code === 'BAD_ARGUMENT' && re.test(e.message));

describe('engine config (YAML)', () => {
  it('reads a full config', () => {
    const c = parseConfig('index: a.duo\nreranker: models/blip\nsearch:\n  mode: hybrid\n  k1: 200\n  fusion: rrf\n  where: { folder: holidays }\n', 'duo.yaml');
    assert.equal(c.search!.k1, 200);
    assert.deepEqual(c.search!.where, { folder: 'holidays' });
    const d = parseConfig('search:\n  where: { year: { gte: 2019 }, album: { in: [a, b] } }\n  mmr: 0.5\n', 'duo.yaml');
    assert.deepEqual(searchOptions(d, {}).where, { year: { gte: 2019 }, album: { in: ['a', 'b'] } });
  });
  it('names an unknown key, a wrong type and a value out of range', () => {
    fails('search:\n  kk1: 5\n', /search\.kk1: unknown key/);
    fails('serach: {}\n', /serach: unknown key/);
    fails('search:\n  k1: lots\n', /search\.k1/);
    fails('search:\n  alpha: 1.5\n', /search\.alpha/);
    fails('search:\n  fusion: average\n', /search\.fusion/);
    fails('search: [1, 2\n', /not valid YAML/);
    fails('search:\n  k2: 5\n', /search\.k2: unknown key/);
    fails('search:\n  where: { year: { between: 3 } }\n', /search\.where\.year/);
  });
  it('flags override the file, and are checked the same way', () => {
    const c = parseConfig('search:\n  k1: 50\n  k: 5\n', 'duo.yaml');
    const o = searchOptions(c, { k1: 100, k: undefined });
    assert.equal(o.k1, 100);
    assert.equal(o.k, 5);
    assert.equal(o.mode, 'stage1', 'defaults come from the one schema');
    assert.throws(() => searchOptions(c, { alpha: -1 }), /--alpha/);
    assert.throws(() => searchOptions(c, { budgetMs: 'soon' }), /--budget-ms/);
    assert.throws(() => searchOptions(parseConfig('search:\n  k: 5\n', 'my.yaml'), { mmr: 2 }), /--mmr/);
  });
});
