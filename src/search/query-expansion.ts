/**
 * Query expansion in embedding space. A text query also gets:
 *   synonym rewrites   one word replaced by a synonym of its first WordNet sense (dog → domestic dog)
 *   hypernym rewrites  one word replaced by a direct hypernym (dog → canine)
 *   caption rewrites   the query in caption-style templates ("a photo of …", "a picture of …")
 * (from the table of expansion-table.ts). Every text is embedded, each group averaged, and
 * the query's embedding becomes normalise(e₀ + w_syn·mean(syn) + w_hyp·mean(hyp) + w_cap·mean(cap)),
 * the original weighted most (each w ≤ 1; a group with no rewrite is left out). The engine does
 * this for every text query (and text term) when the `expand` option is on; `duo eval --expand`
 * calls the same function.
 */
import { l2normalize, type EncodeOptions, type Encoder } from '../models/encoder.js';
import type { ExpansionTable } from './expansion-table.js';

export interface ExpandWeights {
  synonym: number;
  hypernym: number;
  caption: number;
}

export interface Expansions {
  synonym: string[];
  hypernym: string[];
  caption: string[];
}

export const CAPTION_TEMPLATES = ['a photo of {}', 'a picture of {}'] as const;

/** rewrites of one group per query at most (a long caption has many words to replace) */
export const MAX_REWRITES = 24;

/** The rewrites of `text`: each expandable word replaced in turn, and the caption templates. */
export function expansions(text: string, table: ExpansionTable, weights: ExpandWeights): Expansions {
  const out: Expansions = { synonym: [], hypernym: [], caption: [] };
  const trimmed = text.trim();
  for (const m of trimmed.matchAll(/[A-Za-z]+/g)) {
    const entry = table.words[m[0].toLowerCase()];
    if (!entry) continue;
    const replace = (w: string) => trimmed.slice(0, m.index) + w + trimmed.slice(m.index + m[0].length);
    if (weights.synonym > 0) out.synonym.push(...entry[0].slice(0, 2).map(replace));
    if (weights.hypernym > 0) out.hypernym.push(...entry[1].slice(0, 1).map(replace));
  }
  out.synonym = [...new Set(out.synonym)].slice(0, MAX_REWRITES);
  out.hypernym = [...new Set(out.hypernym)].slice(0, MAX_REWRITES);
  if (weights.caption > 0) {
    // "A dog runs" → "a photo of a dog runs": the template's own article stands in for a leading one
    const body = trimmed.replace(/\s*[.!]+$/, '');
    out.caption = CAPTION_TEMPLATES.map((t) => t.replace('{}', /^(a|an|the)\s/i.test(body) ? body.charAt(0).toLowerCase() + body.slice(1) : body));
  }
  return out;
}

/** Expanded, unit-length embeddings of `texts`: one encoder call for every original and rewrite. */
export async function embedExpanded(encoder: Encoder, texts: string[], table: ExpansionTable, weights: ExpandWeights, options: EncodeOptions = {}): Promise<Float32Array[]> {
  const all: string[] = [];
  const plan = texts.map((text) => {
    const e = expansions(text, table, weights);
    const at = (list: string[]) => {
      const start = all.length;
      all.push(...list);
      return [start, all.length] as const;
    };
    return { original: at([text])[0], groups: [[weights.synonym, at(e.synonym)], [weights.hypernym, at(e.hypernym)], [weights.caption, at(e.caption)]] as const };
  });
  const vectors = await encoder.encodeTexts(all, options);
  return plan.map(({ original, groups }) => {
    const v = Float32Array.from(unit(vectors[original]!));
    for (const [w, [start, end]] of groups) {
      if (w === 0 || end === start) continue;
      for (let i = start; i < end; i++) {
        const u = unit(vectors[i]!);
        for (let d = 0; d < v.length; d++) v[d]! += (w * u[d]!) / (end - start);
      }
    }
    return l2normalize(v);
  });
}

function unit(v: Float32Array): Float32Array {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  if (Math.abs(s - 1) < 1e-6 || s === 0) return v;
  return l2normalize(Float32Array.from(v));
}
