/**
 * A starter pack's open vocabulary: words that were never in a training caption but have a
 * GloVe vector, each given a word vector at query time by a map fitted on the words the pack
 * was trained on (ridge regression, src/train/open-vocab/build-open-vocab.ts). The pack ships
 * the GloVe rows (int8, one scale per row: 104 bytes a word) and the map, not mapped 300-d rows
 * (a third of the bytes); the text graph applies the map to the rows a query uses.
 *
 * Files: `open_vocab.json` (the words, most frequent first) and `open_vocab.bin` (tensor file:
 * `glove` q8 rows × gloveDim, `W` gloveDim × wordDim, `b` wordDim), named by the manifest's
 * `openVocabulary` entry. They are not part of the pack's id: they change no image embedding and
 * no embedding of a query whose words the pack was trained on, so indexes stay valid.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createError, DuoError } from '../../errors.js';
import { loadTensors, type Params } from '../tensor-file.js';
import type { OpenVocabTable } from './text-graph.js';

export const OPEN_VOCAB_WORDS = 'open_vocab.json';
export const OPEN_VOCAB_TABLE = 'open_vocab.bin';

export interface OpenVocabManifest {
  words: string;
  table: string;
  count: number;
  gloveDim: number;
  source: string;
  limit: string;
  [key: string]: unknown;
}

export interface OpenVocab {
  words: string[];
  table: OpenVocabTable;
}

export async function loadOpenVocab(dir: string, entry: OpenVocabManifest, wordDim: number): Promise<OpenVocab> {
  const path = (f: string) => join(dir, f);
  // a missing file is FILE_NOT_FOUND; one that is there but cannot be read is MODEL_UNSUPPORTED
  // naming it and what is wrong (it was reported as missing, which sent people looking for it)
  let text: string;
  try {
    text = await readFile(path(entry.words), 'utf8');
  } catch {
    throw createError('FILE_NOT_FOUND', path(entry.words));
  }
  let words: unknown;
  try {
    words = JSON.parse(text);
  } catch (error) {
    throw createError('MODEL_UNSUPPORTED', path(entry.words), `not JSON (${(error as Error).message})`);
  }
  if (!Array.isArray(words) || !words.every((w): w is string => typeof w === 'string')) {
    throw createError('MODEL_UNSUPPORTED', path(entry.words), 'not a JSON array of words');
  }
  let t: Params;
  try {
    t = await loadTensors(path(entry.table));
  } catch (error) {
    if (error instanceof DuoError && error.code === 'FILE_NOT_FOUND') throw error;
    // loadTensors reports a short file as INDEX_CORRUPT (args: path, why) and a damaged header as a bare SyntaxError or RangeError
    const why = error instanceof DuoError ? String(error.args[1]) : (error as Error).message;
    throw createError('MODEL_UNSUPPORTED', path(entry.table), `not a readable tensor file (${why})`);
  }
  const glove = t.get('glove');
  const W = t.get('W');
  const b = t.get('b');
  const d = entry.gloveDim;
  if (!glove || !W || !b || glove.length !== words.length * d || W.length !== d * wordDim || b.length !== wordDim) {
    throw createError('MODEL_UNSUPPORTED', dir, `${entry.table} does not hold ${words.length} rows of ${d} and a ${d}×${wordDim} map`);
  }
  return { words, table: { glove, gloveDim: d, W, b } };
}
