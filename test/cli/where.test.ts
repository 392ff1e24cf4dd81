import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseWhere } from '../../src/cli/where.js';
import { parseSearchOptions } from '../../src/search/options.js';

describe('--where', () => {
  it('turns key=value, lists, ranges, dates and folders into one declarative filter', () => {
    assert.deepEqual(parseWhere(['camera=X100', 'album=[paris, rome]', 'bytes>=1000', 'bytes<5000', ' modified > 2024-06-01', 'folder=holidays/', 'zip=01234', 'raw=true']), {
      camera: 'X100',
      album: { in: ['paris', 'rome'] },
      bytes: { gte: 1000, lt: 5000 },
      modified: { gt: '2024-06-01' },
      id: { prefix: 'holidays/' },
      zip: '01234',
      raw: true,
    });
    assert.equal(parseWhere([]), undefined);
  });

  it('refuses what it cannot mean, naming --where', () => {
    assert.throws(() => parseWhere(['n=1', 'n>=5']), /--where: n is given twice/);
    assert.throws(() => parseWhere(['folder=a', 'folder=b']), /--where: folder is given twice/);
    assert.throws(() => parseWhere(['tag=[]']), /empty list/);
    assert.throws(() => parseWhere(['nokey']), /--where: expected key=value/);
    assert.throws(() => parseWhere(['flag>true']), /needs a number or a date/);
    // a bound that is neither a number nor an ISO date is refused by the option schema, not silently dropped
    assert.throws(() => parseSearchOptions({ where: parseWhere(['modified>=June']) }, (f) => `--${f}`), /--where\.modified.*ISO date/);
  });
});
