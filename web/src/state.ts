/**
 * The page's state lives in the URL, so a search is a link: the text (q) or the item whose
 * neighbours are shown (like), the mode (stage1, hybrid, or compare: both side by side), the page,
 * the page size, the filter chips and query expansion. An uploaded image cannot travel in a link; it lives in memory.
 */
export type View = 'stage1' | 'hybrid' | 'compare';

export interface State {
  q: string;
  like: string;
  view: View;
  page: number;
  k: number;
  /** chip keys, `facet:label` */
  chips: string[];
  /** query expansion (WordNet synonyms, hypernyms, caption rewrites) on text queries */
  expand: boolean;
}

const VIEWS: View[] = ['stage1', 'hybrid', 'compare'];
export const DEFAULT_K = 24;

export function readState(search: string): State {
  const p = new URLSearchParams(search);
  const view = p.get('mode') as View | null;
  const int = (name: string, fallback: number, max: number) => {
    const n = Number(p.get(name));
    return Number.isInteger(n) && n >= 0 && n <= max && p.has(name) ? n : fallback;
  };
  return {
    q: p.get('q') ?? '',
    like: p.get('like') ?? '',
    view: view && VIEWS.includes(view) ? view : 'stage1',
    page: int('page', 0, 10_000),
    k: Math.max(1, int('k', DEFAULT_K, 100)),
    chips: p.getAll('f'),
    expand: p.get('expand') === '1',
  };
}

export function writeState(s: State): string {
  const p = new URLSearchParams();
  if (s.q) p.set('q', s.q);
  if (s.like) p.set('like', s.like);
  if (s.view !== 'stage1') p.set('mode', s.view);
  if (s.page > 0) p.set('page', String(s.page));
  if (s.k !== DEFAULT_K) p.set('k', String(s.k));
  for (const c of s.chips) p.append('f', c);
  if (s.expand) p.set('expand', '1');
  const query = p.toString();
  return query ? `?${query}` : location.pathname;
}
