/**
 * Result columns: a grid of thumbnails (or captions) with scores, rank movement between the
 * stages, per-stage latency, an explain panel per result, and "more like this".
 */
import type { Hit, SearchResponse } from './api.js';
import { fmt, h, ms } from './dom.js';

export interface ColumnActions {
  moreLike(id: string): void;
}

const STAGES: [keyof SearchResponse['latencyMs'], string][] = [
  ['queue', 'queue'],
  ['encode', 'encode'],
  ['stage1', 'stage 1'],
  ['stage2', 'stage 2'],
  ['fusion', 'fusion'],
];

/** each stage's time as text and as a stacked bar */
export function latency(r: SearchResponse): HTMLElement {
  const l = r.latencyMs;
  const total = STAGES.reduce((t, [key]) => t + l[key], 0) || 1;
  const bar = h('div', { class: 'bar', 'aria-hidden': 'true' }, ...STAGES.filter(([key]) => l[key] > 0).map(([key]) => h('span', { class: `seg ${key}`, style: `width:${((100 * l[key]) / total).toFixed(1)}%`, title: `${key} ${ms(l[key])}` })));
  const shown = STAGES.filter(([key]) => (key !== 'queue' || l.queue > 0.05) && (key !== 'stage2' || r.mode === 'hybrid'));
  const parts = shown.map(([key, label]) => h('span', { class: `stage ${key}` }, `${label} ${ms(l[key])}`));
  return h('div', { class: 'latency' }, bar, h('div', { class: 'stages' }, ...parts, h('span', { class: 'stage total' }, r.cached ? 'cached' : `total ${ms(l.total)}`)));
}

function movement(hit: Hit): HTMLElement | null {
  if (!hit.stage2) return null;
  const moved = hit.stage1.rank - hit.rank;
  if (moved === 0) return h('span', { class: 'move same', title: 'same rank as stage 1' }, '=');
  return h('span', { class: `move ${moved > 0 ? 'up' : 'down'}`, title: `stage 1 rank ${hit.stage1.rank}` }, `${moved > 0 ? '↑' : '↓'}${Math.abs(moved)}`);
}

function explainPanel(hit: Hit, r: SearchResponse): HTMLElement {
  const o = r.explain?.options ?? {};
  const rows: [string, string][] = [
    ['rank', String(hit.rank)],
    ['score', fmt(hit.score, 4)],
    ['stage 1', `${fmt(hit.stage1.score, 4)} (rank ${hit.stage1.rank})`],
    ['stage 2', hit.stage2 ? `${fmt(hit.stage2.score, 4)} (rank ${hit.stage2.rank})` : r.fallback ? 'not run: see the note above' : '–'],
  ];
  if (r.mode === 'hybrid') rows.push(['fusion', `${String(o.fusion)}${o.fusion === 'weighted' ? `, α ${String(o.alpha)}` : ''}, k1 ${String(o.k1)}`]);
  // fractional numbers (an item's hubness, which stage 1 subtracted from its cosine) at the scores' precision
  for (const [key, value] of Object.entries(hit.metadata)) if (key !== 'mtimeMs' && key !== 'text') rows.push([key, typeof value === 'number' && !Number.isInteger(value) ? fmt(value, 4) : String(value)]);
  return h('dl', { class: 'explain', hidden: true }, ...rows.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

function card(hit: Hit, r: SearchResponse, actions: ColumnActions): HTMLElement {
  const label = hit.text ?? hit.id;
  const media = hit.thumbnailUrl
    ? h('img', { src: hit.thumbnailUrl, alt: label, loading: 'lazy', width: 256, height: 256, draggable: false })
    : h('blockquote', { class: 'caption' }, hit.text ?? '');
  const more = hit.thumbnailUrl ? h('button', { type: 'button', class: 'more-like', title: 'more like this (M)' }, 'more like this') : null;
  const explain = h('button', { type: 'button', class: 'explain-toggle', 'aria-expanded': 'false', title: 'explain (Enter)' }, 'explain');
  const panel = explainPanel(hit, r);
  const el = h(
    'article',
    { class: 'result', tabindex: 0, 'data-id': hit.id, 'data-rank': hit.rank },
    h('div', { class: 'media' }, media),
    h('div', { class: 'meta' }, h('span', { class: 'rank' }, `#${hit.rank}`), h('span', { class: 'score', title: 'score' }, fmt(hit.score)), movement(hit)),
    h('div', { class: 'name', title: label }, hit.text ? '' : hit.id),
    h('div', { class: 'actions' }, explain, more),
    panel,
  );
  explain.addEventListener('click', () => toggleExplain(el));
  more?.addEventListener('click', () => actions.moreLike(hit.id));
  return el;
}

export function toggleExplain(el: HTMLElement, open?: boolean): void {
  const panel = el.querySelector<HTMLElement>('.explain');
  const button = el.querySelector<HTMLElement>('.explain-toggle');
  if (!panel || !button) return;
  const show = open ?? panel.hidden;
  panel.hidden = !show;
  button.setAttribute('aria-expanded', String(show));
  el.classList.toggle('open', show);
}

export function column(title: string, mode: string, r: SearchResponse, actions: ColumnActions): HTMLElement {
  const header = h('header', {}, h('h2', {}, title), latency(r));
  const note = r.fallback ? h('p', { class: 'fallback', role: 'note' }, r.fallback) : null;
  const grid = h('div', { class: 'grid', role: 'list' }, ...r.results.map((hit) => card(hit, r, actions)));
  const empty = r.results.length === 0 ? h('p', { class: 'empty' }, 'Nothing found. Remove a filter, or try other words.') : null;
  return h('section', { class: 'column', 'data-mode': mode }, header, note, empty, grid);
}

export function errorBox(message: string): HTMLElement {
  return h('p', { class: 'error', role: 'alert' }, message);
}
