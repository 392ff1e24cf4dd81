/**
 * Weighted and negative query terms, as people write them in CLIP photo search:
 * `"a dog" - "grass"`, `2:beach + photo.jpg`, `item:holidays/1.jpg - 0.5:"people"`.
 *
 *   expression := [sign] term (sign term)*        sign := + | -
 *   term       := [weight ':'] phrase | 'item:' id
 *   phrase     := "quoted text" | bare words (up to the next + or - that stands alone)
 *
 * `+` and `-` are operators where a term may start (after a space, a closing quote or at the
 * start): `t-shirt` stays one word. A weight multiplies the term (default 1; a `-` negates it).
 * A phrase is an image when `isImage` says so (the CLI: an existing file with an image
 * extension); otherwise text. A query with no quote, no operator and no `w:`/`item:` prefix is
 * not an expression: it is the plain text query it always was, colons and all.
 * The engine embeds each term, sums w·e over their unit embeddings and normalises the sum.
 */
import { createError } from '../errors.js';
import type { ImageInput } from '../models/encoder.js';
import { extname } from 'node:path';
import { IMAGE_EXTENSIONS } from '../data/image-loader.js';

/** One term of a weighted query: a text, an image or an indexed item, with its weight (negative: away from it). */
export type QueryTerm = { weight: number } & ({ text: string } | { image: ImageInput } | { item: string });

/** what a parsed expression is: a plain query when it reduces to one positive term, else weighted terms */
export type ParsedQuery = { text: string } | { image: string } | { item: string } | { terms: QueryTerm[] };

/** at most this many terms in one query */
export const MAX_TERMS = 16;

/** A phrase is taken as an image path when it ends in an extension `duo index` reads (and the file exists). */
export const hasImageExtension = (s: string) => IMAGE_EXTENSIONS.has(extname(s).toLowerCase());

export interface ParseTermsOptions {
  /** how errors name the query (`--query`, `duo.yaml: …`); default `query` */
  field?: string;
  /** whether a phrase names an image file; default: none does (text only) */
  isImage?: (phrase: string) => boolean;
}

type Token = { kind: 'op'; sign: 1 | -1 } | { kind: 'word'; text: string; quoted: boolean; glued: boolean };

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

function tokenize(s: string, bad: (why: string) => Error): Token[] {
  const out: Token[] = [];
  let i = 0;
  let boundary = true; // where a term may start: an operator is an operator here
  while (i < s.length) {
    const c = s[i]!;
    if (/\s/.test(c)) {
      i++;
      boundary = true;
      continue;
    }
    if ((c === '+' || c === '-') && boundary) {
      out.push({ kind: 'op', sign: c === '+' ? 1 : -1 });
      i++;
      continue;
    }
    if (c === '"') {
      let text = '';
      let j = i + 1;
      for (; j < s.length && s[j] !== '"'; j++) {
        if (s[j] === '\\' && (s[j + 1] === '"' || s[j + 1] === '\\')) j++;
        text += s[j];
      }
      if (j >= s.length) throw bad(`a quote opened at character ${i + 1} is not closed`);
      // glued: a quoted part right after `2:` or `item:` belongs to that prefix
      const prev = out[out.length - 1];
      out.push({ kind: 'word', text, quoted: true, glued: !boundary && prev?.kind === 'word' && !prev.quoted && prev.text.endsWith(':') });
      i = j + 1;
      boundary = true;
      continue;
    }
    let j = i;
    while (j < s.length && !/\s/.test(s[j]!) && s[j] !== '"') j++;
    out.push({ kind: 'word', text: s.slice(i, j), quoted: false, glued: false });
    i = j;
    boundary = false;
  }
  return out;
}

/** Whether `s` is written as an expression (quotes, an operator, a `w:` or `item:` prefix) rather than plain text. */
export function isExpression(s: string): boolean {
  let tokens: Token[];
  try {
    tokens = tokenize(s, () => new Error('unclosed quote'));
  } catch {
    return isExpressionSafe(s);
  }
  if (tokens.some((t) => t.kind === 'op' || (t.kind === 'word' && t.quoted))) return true;
  const first = tokens[0];
  return first?.kind === 'word' && /^(item|[^:\s]+):/.test(first.text) && (first.text.startsWith('item:') || NUMBER.test(first.text.slice(0, first.text.indexOf(':'))));
}

/**
 * Parses a query as typed on the command line or in a queries file. A plain query (no
 * operator, no quote, no prefix) comes back as `{ text }` unchanged; an expression that reduces
 * to one term of positive weight comes back as that plain query; otherwise `{ terms }`.
 */
export function parseQueryExpression(input: string, options: ParseTermsOptions = {}): ParsedQuery {
  const field = options.field ?? 'query';
  const bad = (why: string) => createError('BAD_ARGUMENT', field, why);
  let tokens: Token[];
  try {
    tokens = tokenize(input, bad);
  } catch (error) {
    if (isExpressionSafe(input)) throw error;
    return { text: input };
  }
  if (!isExpression(input)) return { text: input };

  const terms: QueryTerm[] = [];
  let i = 0;
  while (i < tokens.length) {
    const n = terms.length + 1;
    let sign: 1 | -1 = 1;
    const op = tokens[i]!;
    if (op.kind === 'op') {
      sign = op.sign;
      i++;
    } else if (terms.length > 0) throw bad(`term ${n}: expected + or - before it`);
    const head = tokens[i];
    if (!head) throw bad(`term ${n}: expected a term after "${sign > 0 ? '+' : '-'}"`);
    if (head.kind === 'op') throw bad(`term ${n}: two operators in a row`);
    let weight = 1;
    let phrase: string;
    let quoted = head.quoted;
    i++;
    const colon = head.quoted ? -1 : head.text.indexOf(':');
    if (colon > 0 || (colon === 0 && !head.quoted)) {
      const prefix = head.text.slice(0, colon);
      let rest = head.text.slice(colon + 1);
      const next = tokens[i];
      if (rest === '' && next?.kind === 'word' && next.glued) {
        rest = next.text;
        quoted = true;
        i++;
      }
      if (prefix === 'item') {
        if (rest === '') throw bad(`term ${n}: item: needs an id (item:<id>)`);
        terms.push({ weight: sign, item: rest });
        continue;
      }
      if (!NUMBER.test(prefix)) throw bad(`term ${n}: weight "${prefix}" is not a number`);
      weight = Number(prefix);
      if (!Number.isFinite(weight)) throw bad(`term ${n}: weight "${prefix}" is not a finite number`);
      if (rest === '' && !quoted) throw bad(`term ${n}: nothing after the weight ${prefix}:`);
      phrase = rest;
    } else phrase = head.text;
    // bare words run on to the next operator
    for (let t = tokens[i]; !quoted && t?.kind === 'word' && !t.quoted; t = tokens[++i]) phrase += ` ${t.text}`;
    const after = tokens[i];
    if (after?.kind === 'word') throw bad(`term ${n}: expected + or - between "${phrase}" and "${after.text}"`);
    if (phrase.trim() === '') throw bad(`term ${n}: is empty`);
    const w = sign * weight;
    terms.push(options.isImage?.(phrase) ? { weight: w, image: phrase } : { weight: w, text: phrase });
  }
  if (terms.length === 0) throw bad('is empty');
  if (terms.length > MAX_TERMS) throw bad(`has ${terms.length} terms, over the limit of ${MAX_TERMS}`);
  if (terms.length === 1 && terms[0]!.weight > 0) {
    const t = terms[0]!;
    return 'text' in t ? { text: t.text } : 'item' in t ? { item: t.item } : { image: t.image as string };
  }
  return { terms };
}

/** an unclosed quote is an error only where the rest says it is an expression (a lone `"` in plain text is text) */
function isExpressionSafe(s: string): boolean {
  return /(^|\s)[+-](\s|"|$)/.test(s) || /"[^"]*"/.test(s);
}

/** A term list written back as an expression, for responses and logs: `"a dog" - "grass"`, `2:item:x`. */
export function describeTerms(terms: QueryTerm[]): string {
  return terms
    .map((t, i) => {
      const w = Math.abs(t.weight);
      const sign = t.weight < 0 ? '- ' : i > 0 ? '+ ' : '';
      const body = 'text' in t ? JSON.stringify(t.text) : 'item' in t ? `item:${t.item}` : typeof t.image === 'string' ? t.image : '<image>';
      return `${sign}${w === 1 ? '' : `${w}:`}${body}`;
    })
    .join(' ');
}
