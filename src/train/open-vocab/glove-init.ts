/**
 * Word vectors that start from GloVe (issue [9] item 1, "with and without GloVe"): a word GloVe
 * has starts as its unit GloVe row through a fixed seeded random projection to wordDim, scaled to
 * unit length like the random start (N(0, 1/wordDim) per component has norm ≈ 1); the others keep
 * the random start initDualEncoder gives them.
 */
import { initDualEncoder } from '../dual-encoder.js';
import { gaussian, seeded } from '../../util/random.js';
import { readGlove, winkVectorsPath } from './glove-reader.js';

/** `hit[id]`: whether token id's row came from GloVe. */
export async function gloveInitialEmbed(tokens: string[], wordDim: number, seed: number): Promise<{ embed: Float32Array; found: number; hit: boolean[] }> {
  const embed = initDualEncoder({ imageDim: 1, vocabSize: tokens.length, wordDim, embedDim: 1, head: 'linear', hidden: 0 }, seed).params.get('text.embed')!;
  const wanted = new Set(tokens);
  const glove = await readGlove(winkVectorsPath(), (w) => wanted.has(w));
  const rand = seeded(seed + 7919);
  const gauss = () => gaussian(rand);
  const P = Float32Array.from({ length: glove.dim * wordDim }, gauss);
  let found = 0;
  const hit = tokens.map(() => false);
  tokens.forEach((w, id) => {
    const g = glove.rows.get(w)?.vector;
    if (!g) return;
    found++;
    hit[id] = true;
    const row = new Float32Array(wordDim);
    for (let j = 0; j < glove.dim; j++) for (let k = 0; k < wordDim; k++) row[k]! += g[j]! * P[j * wordDim + k]!;
    const n = Math.hypot(...row) || 1;
    embed.set(row.map((v) => v / n), id * wordDim);
  });
  return { embed, found, hit };
}
