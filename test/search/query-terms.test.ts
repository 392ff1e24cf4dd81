import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DuoError } from '../../src/errors.js';
import { describeTerms, isExpression, parseQueryExpression } from '../../src/search/query-terms.js';

const parse = (s: string) => parseQueryExpression(s, { field: '--query', isImage: (p) => p.endsWith('.jpg') });
const refused = (s: string, message: RegExp) =>
  assert.throws(
    () => parse(s),
    (e: unknown) => e instanceof DuoError && e.code === 'BAD_ARGUMENT' && message.test(e.message),
    s,
  );

describe('query expressions', () => {
  it('a plain query stays the text it was, colons, hyphens and lone quotes included', () => {
    for (const s of ['a dog on a beach', 'sunset at 5:30', 'a boy in a t-shirt', '6" sub', 'x:beach']) {
      assert.equal(isExpression(s), false, s);
      assert.deepEqual(parse(s), { text: s });
    }
  });

  it('+ and - join terms; - negates; bare words run on to the next operator', () => {
    assert.deepEqual(parse('"a dog" - "grass"'), { terms: [{ weight: 1, text: 'a dog' }, { weight: -1, text: 'grass' }] });
    assert.deepEqual(parse('a dog - green grass + a ball'), {
      terms: [
        { weight: 1, text: 'a dog' },
        { weight: -1, text: 'green grass' },
        { weight: 1, text: 'a ball' },
      ],
    });
    assert.deepEqual(parse('"a dog"-"grass"'), { terms: [{ weight: 1, text: 'a dog' }, { weight: -1, text: 'grass' }] }, 'no spaces needed after a quote');
    assert.deepEqual(parse('- "grass" + dog'), { terms: [{ weight: -1, text: 'grass' }, { weight: 1, text: 'dog' }] }, 'a leading sign');
  });

  it('weights bind to their term: w:term, w:"quoted", negative through -, decimals and exponents', () => {
    assert.deepEqual(parse('2:beach + photo.jpg'), { terms: [{ weight: 2, text: 'beach' }, { weight: 1, image: 'photo.jpg' }] });
    assert.deepEqual(parse('0.5:"red ball" - 1.5:sand castle'), { terms: [{ weight: 0.5, text: 'red ball' }, { weight: -1.5, text: 'sand castle' }] });
    assert.deepEqual(parse('dog - 2e-1:"a cat"'), { terms: [{ weight: 1, text: 'dog' }, { weight: -0.2, text: 'a cat' }] });
    assert.deepEqual(parse('item:warm/red.jpg - 3:"red"'), { terms: [{ weight: 1, item: 'warm/red.jpg' }, { weight: -3, text: 'red' }] });
    assert.deepEqual(parse('dog + item:"my photos/a b.jpg"'), { terms: [{ weight: 1, text: 'dog' }, { weight: 1, item: 'my photos/a b.jpg' }] });
  });

  it('quotes keep operators, colons and escaped quotes as text', () => {
    assert.deepEqual(parse('"a - b + c: d" - "say \\"hi\\""'), { terms: [{ weight: 1, text: 'a - b + c: d' }, { weight: -1, text: 'say "hi"' }] });
  });

  it('one positive term is the plain query it names', () => {
    assert.deepEqual(parse('"a dog"'), { text: 'a dog' });
    assert.deepEqual(parse('3:"a dog"'), { text: 'a dog' });
    assert.deepEqual(parse('item:x.jpg'), { item: 'x.jpg' });
    assert.deepEqual(parse('2:photo.jpg'), { image: 'photo.jpg' });
    assert.deepEqual(parse('- "a dog"'), { terms: [{ weight: -1, text: 'a dog' }] }, 'a lone negative term stays a term');
  });

  it('errors name the query and the term at fault', () => {
    refused('"a dog" + x:beach', /^--query: term 2: weight "x" is not a number$/);
    refused('"a dog" "cat"', /term 1: expected \+ or - between "a dog" and "cat"/);
    refused('"a dog" -', /term 2: expected a term after "-"/);
    refused('dog + - cat', /term 2: two operators in a row/);
    refused('"unclosed - dog', /a quote opened at character 1 is not closed/);
    refused('dog + item:', /term 2: item: needs an id/);
    refused('dog + 2:', /term 2: nothing after the weight 2:/);
    refused('dog + ""', /term 2: is empty/);
    refused(Array.from({ length: 17 }, (_, i) => `w${i}`).join(' + '), /17 terms, over the limit of 16/);
  });

  it('describes terms as an expression that parses back to them', () => {
    const terms = [
      { weight: 1, text: 'a dog' },
      { weight: -1, text: 'grass' },
      { weight: 2.5, item: 'x.jpg' },
      { weight: -0.5, text: 'say "hi"' },
    ];
    const s = describeTerms(terms);
    assert.equal(s, '"a dog" - "grass" + 2.5:item:x.jpg - 0.5:"say \\"hi\\""');
  });
});
