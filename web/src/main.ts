/**
 * The search page: text (plain, or weighted terms written out: `"a dog" - "grass"`), image (drop
 * or pick a file) or "more like this" queries; stage 1, hybrid, or both side by side; query
 * expansion; filter chips; paging; state in the URL. Talks to API v1 only.
 */
import { api, ApiError, type Collection, type Options, type SearchResponse } from './api.js';
import { chipBar, whereOf } from './chips.js';
import { $, h } from './dom.js';
import { installKeyboard } from './keyboard.js';
import { column, errorBox } from './results.js';
import { readState, writeState, type State, type View } from './state.js';

let state: State = readState(location.search);
/** an uploaded image query: it cannot live in the URL */
let image: File | null = null;
let imageUrl: string | null = null;
let collection: Collection | undefined;
let running: AbortController | undefined;
let last: SearchResponse[] = [];

const input = $<HTMLInputElement>('#q');
const main = $('#results');
const status = $('#status');

function navigate(next: Partial<State>, keepImage = false): void {
  state = { ...state, ...next };
  if (!keepImage) setImage(null);
  history.pushState(null, '', writeState(state));
  void run();
}

function setImage(file: File | null): void {
  if (imageUrl) URL.revokeObjectURL(imageUrl);
  image = file;
  imageUrl = file ? URL.createObjectURL(file) : null;
}

function queryByImage(file: File): void {
  if (!file.type.startsWith('image/') && file.type !== '') {
    main.replaceChildren(errorBox(`${file.name} is not an image.`));
    return;
  }
  setImage(file);
  state = { ...state, q: '', like: '', page: 0 };
  history.pushState(null, '', writeState(state));
  void run();
}

function syncControls(): void {
  input.value = state.q;
  $<HTMLInputElement>('#expand').checked = state.expand;
  for (const radio of document.querySelectorAll<HTMLInputElement>('input[name=view]')) radio.checked = radio.value === state.view;
  const hybrid = Boolean(collection?.reranker);
  for (const radio of document.querySelectorAll<HTMLInputElement>('input[name=view]')) if (radio.value !== 'stage1') radio.disabled = !hybrid;
  $('#chips').replaceChildren(collection ? chipBar(collection.facets, state.chips, (chips) => navigate({ chips, page: 0 }, true)) : '');
  const query = $('#query');
  if (image && imageUrl) query.replaceChildren(h('img', { src: imageUrl, alt: 'your image', class: 'query-image' }), h('span', {}, `Images like ${image.name} (an uploaded image is not part of the link)`), clearButton());
  else if (state.like) query.replaceChildren(h('img', { src: `/v1/images/${encodeURIComponent(state.like)}/thumbnail?size=128`, alt: state.like, class: 'query-image' }), h('span', {}, `More like ${state.like}`), clearButton());
  else query.replaceChildren();
}

function clearButton(): HTMLElement {
  const b = h('button', { type: 'button', class: 'clear' }, 'clear');
  b.addEventListener('click', () => navigate({ like: '', q: '', page: 0 }));
  return b;
}

const TITLES: Record<string, string> = { stage1: 'Stage 1 (bi-encoder)', hybrid: 'Hybrid (stage 1 + cross-encoder)' };

async function run(): Promise<void> {
  running?.abort();
  const controller = new AbortController();
  running = controller;
  syncControls();
  const paging = $('#paging');
  if (!state.q && !state.like && !image) {
    main.replaceChildren(h('p', { class: 'intro' }, collection ? `${collection.items.toLocaleString()} ${collection.kind} indexed. Type a description, drop a photo anywhere on the page, or pick one.` : ''));
    paging.hidden = true;
    status.textContent = '';
    last = [];
    return;
  }
  const options: Options = { mode: 'stage1', k: state.k, offset: state.page * state.k, where: collection ? whereOf(collection.facets, state.chips) : undefined };
  const modes: ('stage1' | 'hybrid')[] = state.view === 'compare' ? ['stage1', 'hybrid'] : [state.view];
  const ask = (o: Options) =>
    image ? api.byImage(image, o, controller.signal) : state.like ? api.similar(state.like, o, controller.signal) : api.byText(state.q, state.expand ? { ...o, expand: true } : o, controller.signal);
  main.setAttribute('aria-busy', 'true');
  status.textContent = 'Searching…';
  try {
    const answers = await Promise.all(modes.map((mode) => ask({ ...options, mode })));
    if (controller.signal.aborted) return;
    last = answers;
    const columns = answers.map((r, i) => column(TITLES[modes[i]!]!, modes[i]!, r, { moreLike: (id) => navigate({ like: id, q: '', page: 0 }) }));
    main.replaceChildren(h('div', { class: `columns${columns.length > 1 ? ' compare' : ''}` }, ...columns));
    const first = answers[0]!;
    status.textContent = `${first.results.length ? `Results ${first.offset + 1}–${first.offset + first.results.length}` : 'No results'}${state.view === 'compare' ? ', stage 1 and hybrid side by side' : ''}`;
    paging.hidden = false;
    $<HTMLButtonElement>('#prev').disabled = state.page === 0;
    $<HTMLButtonElement>('#next').disabled = !answers.some((r) => r.next);
    $('#page').textContent = `page ${state.page + 1}`;
    if (image && collection?.captions) void showCaptions(image, controller.signal);
  } catch (error) {
    if (controller.signal.aborted) return;
    const message = error instanceof ApiError ? `${error.message}${error.status === 503 ? ' — the server is busy; try again in a moment.' : ''}` : `The server did not answer: ${(error as Error).message}`;
    main.replaceChildren(errorBox(message));
    status.textContent = '';
    paging.hidden = true;
  } finally {
    if (running === controller) main.removeAttribute('aria-busy');
  }
}

async function showCaptions(file: File, signal: AbortSignal): Promise<void> {
  try {
    const r = await api.captions(file, { mode: collection?.reranker ? 'hybrid' : 'stage1', k: 5, offset: 0 }, signal);
    main.prepend(h('section', { class: 'captions' }, h('h2', {}, 'Captions that describe it'), h('ol', {}, ...r.results.map((hit) => h('li', {}, hit.text ?? '')))));
  } catch {
    // the images still stand
  }
}

function installDrop(): void {
  const overlay = $('#drop');
  let depth = 0;
  const hasFiles = (e: DragEvent) => [...(e.dataTransfer?.types ?? [])].includes('Files');
  window.addEventListener('dragenter', (e) => {
    if (!hasFiles(e)) return;
    depth++;
    overlay.hidden = false;
  });
  window.addEventListener('dragleave', () => {
    depth = Math.max(0, depth - 1);
    if (depth === 0) overlay.hidden = true;
  });
  window.addEventListener('dragover', (e) => {
    if (hasFiles(e)) e.preventDefault();
  });
  window.addEventListener('drop', (e) => {
    e.preventDefault();
    depth = 0;
    overlay.hidden = true;
    const file = e.dataTransfer?.files[0];
    if (file) queryByImage(file);
  });
  const picker = $<HTMLInputElement>('#file');
  picker.addEventListener('change', () => {
    const file = picker.files?.[0];
    if (file) queryByImage(file);
    picker.value = '';
  });
}

async function start(): Promise<void> {
  $('#search').addEventListener('submit', (e) => {
    e.preventDefault();
    const q = input.value.trim();
    if (q) navigate({ q, like: '', page: 0 });
  });
  for (const radio of document.querySelectorAll<HTMLInputElement>('input[name=view]')) {
    radio.addEventListener('change', () => navigate({ view: radio.value as View }, true));
  }
  const expand = $<HTMLInputElement>('#expand');
  expand.addEventListener('change', () => navigate({ expand: expand.checked, page: 0 }, true));
  $('#prev').addEventListener('click', () => state.page > 0 && navigate({ page: state.page - 1 }, true));
  $('#next').addEventListener('click', () => last.some((r) => r.next) && navigate({ page: state.page + 1 }, true));
  window.addEventListener('popstate', () => {
    state = readState(location.search);
    setImage(null);
    void run();
  });
  installDrop();
  installKeyboard({
    nextPage: () => last.some((r) => r.next) && navigate({ page: state.page + 1 }, true),
    previousPage: () => state.page > 0 && navigate({ page: state.page - 1 }, true),
    toggleCompare: () => collection?.reranker && navigate({ view: state.view === 'compare' ? 'stage1' : 'compare' }, true),
    moreLike: (id) => navigate({ like: id, q: '', page: 0 }),
  });
  try {
    collection = await api.collection();
    $('#about').textContent = `${collection.items.toLocaleString()} ${collection.kind} · ${collection.model}${collection.reranker ? ` · stage 2: ${collection.reranker}` : ' · stage 1 only'}`;
    input.maxLength = collection.limits.maxQueryChars;
  } catch (error) {
    main.replaceChildren(errorBox(`Cannot reach the server: ${(error as Error).message}`));
    return;
  }
  await run();
  document.body.dataset.ready = 'true';
}

void start();
