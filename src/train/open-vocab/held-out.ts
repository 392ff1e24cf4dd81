/**
 * The words the open-vocabulary measurement hides from training: a seeded sample of the
 * training vocabulary's mid-frequency words (ranks `from`..`to` by train-caption count, letters
 * only, three letters or more), which are mostly the nouns, adjectives and verbs of the
 * captions ("grass", "wooden", "climbing"), never the function words at the top of the list.
 * Training on a vocabulary without them drops their tokens from every caption, as the
 * shipped pack drops any word it has never seen.
 */
import { seeded } from '../../util/random.js';
import { shuffle } from '../schedule.js';
import { UNK, Vocabulary } from '../../models/starter/vocab.js';

export interface HeldOutRule {
  count: number;
  seed: number;
  from: number;
  to: number;
}

export const HELD_OUT_RULE: HeldOutRule = { count: 150, seed: 1, from: 100, to: 1000 };

export function heldOutWords(vocab: Vocabulary, rule: HeldOutRule = HELD_OUT_RULE): string[] {
  const band = vocab.tokens.slice(1).slice(rule.from, rule.to).filter((w) => /^[a-z]{3,}$/.test(w));
  const order = shuffle(band.length, seeded(rule.seed));
  return order.slice(0, rule.count).map((i) => band[i]!).sort();
}

/** `vocab` without `words`: their ids go, so encode() drops them as unknown words. */
export function withoutWords(vocab: Vocabulary, words: Iterable<string>): Vocabulary {
  const drop = new Set(words);
  return new Vocabulary([UNK, ...vocab.tokens.slice(1).filter((t) => !drop.has(t))]);
}
