import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DuoError } from '../../src/errors.js';
import { buildIndex } from '../../src/index/build-index.js';
import type { Encoder } from '../../src/models/encoder.js';
import { loadEncoder } from '../../src/models/load-encoder.js';
import { SearchEngine } from '../../src/search/engine.js';
import { baseForms, buildExpansionTable, type ExpansionTable } from '../../src/search/expansion-table.js';
import { openStore } from '../../src/index/open-store.js';
import { flagOf, parseSearchOptions } from '../../src/search/options.js';
import { embedExpanded, expansions } from '../../src/search/query-expansion.js';
import { parseConfig } from '../../src/cli/config.js';
import { packageRoot } from '../../src/util/package-root.js';
import { evaluateRetrieval } from '../../src/eval/retrieval-eval.js';
import { COLOURS, colourDataset, tempDir, writeColourImage } from '../helpers.js';

/** A few WordNet 3.1 lines, in its formats, with offsets of their own. */
const WORDNET = {
  noun: {
    index: [
      '  1 This software and database is being provided to you, the LICENSEE, by  ',
      'dog n 2 2 @ ~ 2 1 00000100 00000300  ',
      'canine n 1 1 ~ 1 0 00000200  ',
      'running n 1 0 1 0 00000600  ',
    ].join('\n'),
    data: [
      '  1 This software and database is being provided to you, the LICENSEE, by  ',
      '00000100 05 n 02 dog 0 domestic_dog 0 002 @ 00000200 n 0000 ~ 00000300 n 0000 | a member of the genus Canis  ',
      '00000200 05 n 01 canine 0 001 ~ 00000100 n 0000 | a carnivore  ',
      '00000300 18 n 01 frump 0 000 | a dull unattractive woman  ',
      '00000600 04 n 01 running 0 000 | the act of running  ',
    ].join('\n'),
  },
  verb: {
    index: 'run v 1 1 @ 1 5 00000400  \n',
    data: ['00000400 38 v 02 run 0 scat 0 001 @ 00000500 v 0000 01 + 02 00 | move fast  ', '00000500 38 v 01 travel_rapidly 0 000 01 + 02 00 | go fast  '].join('\n'),
  },
  adj: { index: 'big a 1 0 1 3 00000700  \n', data: '00000700 00 a 02 big(a) 0 large 0 000 | above average in size  \n' },
};

describe('query expansion', () => {
  it('builds the table from WordNet lines: first sense, synonyms, direct hypernyms, base forms, the most tagged part of speech', () => {
    const t = buildExpansionTable(['dog', 'dogs', 'running', 'big', 'the', 'frump', 'cat'], WORDNET);
    assert.deepEqual(t.words, {
      big: [['large'], []],
      dog: [['domestic dog'], ['canine']],
      dogs: [['domestic dog'], ['canine']],
      running: [['scat'], ['travel rapidly']],
    });
    const known = new Set(['dog', 'dogs', 'canine', 'running', 'run']);
    const closed = buildExpansionTable(['dog', 'running'], WORDNET, { known: (w) => known.has(w) });
    assert.deepEqual(closed.words, { dog: [[], ['canine']] }, 'a closed vocabulary keeps only expansions it can read');
    assert.deepEqual(baseForms('running', 'verb'), ['running', 'runne', 'runn', 'run']);
  });

  const table: ExpansionTable = { format: 1, source: 'test', words: { dog: [['domestic dog', 'hound', 'pooch'], ['canine', 'animal']], grass: [[], ['plant']] } };
  const all = { synonym: 0.5, hypernym: 0.25, caption: 0.25 };

  it('rewrites a query: each word in turn, at most two synonyms and one hypernym a word, caption templates', () => {
    assert.deepEqual(expansions('A dog on the grass.', table, all), {
      synonym: ['A domestic dog on the grass.', 'A hound on the grass.'],
      hypernym: ['A canine on the grass.', 'A dog on the plant.'],
      caption: ['a photo of a dog on the grass', 'a picture of a dog on the grass'],
    });
    assert.deepEqual(expansions('Dogs', table, { synonym: 0, hypernym: 1, caption: 0 }), { synonym: [], hypernym: [], caption: [] }, 'a word without an entry, groups weighted 0 left out');
  });

  describe('in the engine', () => {
    const root = join(tempDir(), 'photos');
    const indexPath = join(tempDir(), 'photos.duo');
    const colourTable: ExpansionTable = { format: 1, source: 'test', words: { red: [['crimson'], ['yellow']] } };
    let encoder: Encoder;
    let engine: SearchEngine;
    before(async () => {
      mkdirSync(root, { recursive: true });
      await Promise.all(Object.keys(COLOURS).map((n) => writeColourImage(join(root, `${n}.jpg`), COLOURS[n]!)));
      const clip = join(packageRoot(), 'models', 'colour-clip');
      encoder = await loadEncoder(clip);
      await buildIndex({ root, indexPath, encoder, modelSpec: clip });
      engine = new SearchEngine({ store: await openStore(indexPath), encoder, expansions: () => colourTable });
    });
    after(async () => {
      await engine.store.close();
      await encoder.dispose();
    });

    it('--expand changes the embedding to normalise(e₀ + Σ w·mean(rewrites)), unit length', async () => {
      const [plain] = await engine.embed([{ text: 'red' }]);
      const [expanded] = await engine.embed([{ text: 'red' }], [], undefined, all);
      const [e0, syn, hyp, cap1, cap2] = await encoder.encodeTexts(['red', 'crimson', 'yellow', 'a photo of red', 'a picture of red']);
      const want = e0!.map((x, d) => x + 0.5 * syn![d]! + 0.25 * hyp![d]! + 0.25 * ((cap1![d]! + cap2![d]!) / 2));
      const norm = Math.hypot(...want);
      expanded!.forEach((x, d) => assert.ok(Math.abs(x - want[d]! / norm) < 1e-5, `dimension ${d}`));
      assert.ok(Math.abs(Math.hypot(...expanded!) - 1) < 1e-5);
      assert.ok(Math.abs(Math.hypot(...plain!.map((x, d) => x - expanded![d]!))) > 0.05, 'the expansion moved it');
      const [direct] = await embedExpanded(encoder, ['red'], colourTable, all);
      assert.deepEqual(Array.from(direct!), Array.from(expanded!));
    });

    it('search with expand: the hypernym pulls yellow up; cached apart from the plain query', async () => {
      const [plain] = await engine.search([{ text: 'red' }], { k: 6 });
      const [x] = await engine.search([{ text: 'red' }], { k: 6, expand: true, expandSynonym: 0, expandCaption: 0, expandHypernym: 0.5 });
      assert.equal(x!.results[0]!.id, 'red.jpg');
      assert.ok(x!.results.find((h) => h.id === 'yellow.jpg')!.score > plain!.results.find((h) => h.id === 'yellow.jpg')!.score, 'yellow scores higher');
      assert.equal(x!.cached, undefined);
    });

    it('eval: expanded captions are the text→image queries; image→text ranks the captions as indexed', async () => {
      const ds = await colourDataset();
      const plain = await evaluateRetrieval(ds, encoder);
      // every query replaced by "red": text→image collapses, image→text must not move
      const skewed = await evaluateRetrieval(ds, encoder, { embedQueries: (texts) => encoder.encodeTexts(texts.map(() => 'red')) });
      assert.equal(plain.textToImage['R@1'], 100);
      assert.ok(skewed.textToImage['R@1'] < 50, `text→image R@1 ${skewed.textToImage['R@1']}`);
      assert.deepEqual(skewed.imageToText, plain.imageToText);
    });

    it('an engine without a table refuses expand, naming the option', async () => {
      const bare = new SearchEngine({ store: engine.store, encoder });
      await assert.rejects(bare.search([{ text: 'red' }], { expand: true }), (e: unknown) => e instanceof DuoError && /^expand: no query-expansion table/.test(e.message));
      const [r] = await bare.search([{ text: 'red' }], { expand: false });
      assert.equal(r!.results[0]!.id, 'red.jpg');
    });
  });

  it('options: validated by the one schema, errors under the name used', () => {
    assert.deepEqual(
      (({ expand, expandSynonym, expandHypernym, expandCaption }) => ({ expand, expandSynonym, expandHypernym, expandCaption }))(parseSearchOptions({})),
      { expand: false, expandSynonym: 0.5, expandHypernym: 0.25, expandCaption: 0.25 },
    );
    assert.throws(() => parseSearchOptions({ expandSynonym: 1.5 }, flagOf), /--expand-synonym: Too big/);
    assert.throws(() => parseSearchOptions({ expand: 'yes' }, flagOf), /--expand: /);
    assert.throws(() => parseConfig('search:\n  expandCaption: -1\n', 'duo.yaml'), /duo\.yaml: search\.expandCaption: Too small/);
    assert.equal(parseConfig('search:\n  expand: true\n', 'duo.yaml').search!.expand, true);
  });
});
