/**
 * The starter text side's tokenizer: lower-case words of letters and digits, a vocabulary
 * built from the training captions only (words seen at least `minCount` times), id 0 for
 * every unknown word so no caption is ever empty.
 */
export const UNK = '<unk>';

export function words(text: string): string[] {
  return text.toLowerCase().match(/[a-z0-9]+/g) ?? [];
}

export class Vocabulary {
  private readonly ids: Map<string, number>;

  constructor(readonly tokens: string[]) {
    if (tokens[0] !== UNK) throw new Error(`vocabulary must start with ${UNK}`);
    this.ids = new Map(tokens.map((t, i) => [t, i]));
  }

  static build(captions: string[], minCount = 2): Vocabulary {
    const counts = new Map<string, number>();
    for (const c of captions) for (const w of words(c)) counts.set(w, (counts.get(w) ?? 0) + 1);
    const kept = [...counts].filter(([, n]) => n >= minCount).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    return new Vocabulary([UNK, ...kept.map(([w]) => w)]);
  }

  get size(): number {
    return this.tokens.length;
  }

  /** Known words' ids; a caption with none becomes [UNK]. */
  encode(text: string, maxTokens = 64): Int32Array {
    const ids = words(text).slice(0, maxTokens).map((w) => this.ids.get(w) ?? 0).filter((id) => id !== 0);
    return Int32Array.from(ids.length > 0 ? ids : [0]);
  }
}
