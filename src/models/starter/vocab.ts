/**
 * The starter text side's tokenizer: lower-case words of letters and digits, a vocabulary
 * built from the training captions only (words seen at least `minCount` times), id 0 for
 * every unknown word so no caption is ever empty. A vocabulary may also hold frequent word
 * pairs ("red shirt"), which the cross-encoder reads as tokens of their own: a bag of single
 * words cannot say which colour goes with which thing.
 */
export const UNK = '<unk>';

export function words(text: string): string[] {
  return text.toLowerCase().match(/[a-z0-9]+/g) ?? [];
}

export class Vocabulary {
  private readonly ids: Map<string, number>;

  constructor(readonly tokens: string[]) {
    if (tokens[0] !== UNK) throw new Error(`vocabulary must start with ${UNK}`);
    // the first id of a token wins: a pack's open vocabulary follows its trained words
    this.ids = new Map();
    tokens.forEach((t, i) => {
      if (!this.ids.has(t)) this.ids.set(t, i);
    });
  }

  static build(captions: string[], minCount = 2): Vocabulary {
    return new Vocabulary([UNK, ...frequent(captions.map(words), minCount)]);
  }

  /** This vocabulary plus the adjacent word pairs seen at least `minCount` times. */
  withPairs(captions: string[], minCount: number): Vocabulary {
    const pairs = captions.map((c) => {
      const w = words(c);
      return w.slice(1).map((b, i) => `${w[i]} ${b}`);
    });
    return new Vocabulary([...this.tokens.filter((t) => !t.includes(' ')), ...frequent(pairs, minCount)]);
  }

  get size(): number {
    return this.tokens.length;
  }

  /** The words encode() reads, each once, split into those this vocabulary has and those it drops. */
  coverage(text: string, maxTokens = 64): { known: string[]; unknown: string[] } {
    const known: string[] = [];
    const unknown: string[] = [];
    for (const w of new Set(words(text).slice(0, maxTokens))) (this.ids.has(w) ? known : unknown).push(w);
    return { known, unknown };
  }

  /** Known words' ids, then known word pairs' ids; a caption with none becomes [UNK]. */
  encode(text: string, maxTokens = 64): Int32Array {
    const w = words(text).slice(0, maxTokens);
    const ids = w.map((x) => this.ids.get(x) ?? 0);
    for (let i = 1; i < w.length; i++) ids.push(this.ids.get(`${w[i - 1]} ${w[i]}`) ?? 0);
    const known = ids.filter((id) => id !== 0);
    return Int32Array.from(known.length > 0 ? known : [0]);
  }
}

function frequent(texts: string[][], minCount: number): string[] {
  const counts = new Map<string, number>();
  for (const t of texts) for (const w of t) counts.set(w, (counts.get(w) ?? 0) + 1);
  return [...counts].filter(([, n]) => n >= minCount).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([w]) => w);
}
