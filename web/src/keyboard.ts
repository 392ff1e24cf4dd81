/**
 * Keyboard navigation: / focuses the search box; arrows move between results (↓ from the box
 * enters the grid); Enter opens a result's explain panel; M asks for more like it; N and P page;
 * C switches the side-by-side view; Escape closes a panel or returns to the box.
 */
import { toggleExplain } from './results.js';

export interface KeyActions {
  nextPage(): void;
  previousPage(): void;
  toggleCompare(): void;
  moreLike(id: string): void;
}

const typing = (el: Element | null) => el instanceof HTMLInputElement || el instanceof HTMLTextAreaElement || el instanceof HTMLSelectElement;

/** cards per row in the grid holding `card` */
function perRow(cards: HTMLElement[]): number {
  const top = cards[0]?.offsetTop;
  const n = cards.filter((c) => c.offsetTop === top).length;
  return Math.max(1, n);
}

function move(card: HTMLElement, key: string): void {
  const grid = card.parentElement;
  if (!grid) return;
  const cards = [...grid.querySelectorAll<HTMLElement>('.result')];
  const at = cards.indexOf(card);
  const row = perRow(cards);
  const step = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -row, ArrowDown: row }[key] ?? 0;
  let next = cards[at + step];
  const columns = [...document.querySelectorAll<HTMLElement>('.column .grid')];
  const rowEnd = key === 'ArrowRight' && (at % row === row - 1 || at === cards.length - 1);
  const rowStart = key === 'ArrowLeft' && at % row === 0;
  const other = columns[columns.indexOf(grid) + (key === 'ArrowRight' ? 1 : -1)];
  if ((rowEnd || rowStart) && other) {
    // across to the other column of the side-by-side view, on the same row
    const theirs = [...other.querySelectorAll<HTMLElement>('.result')];
    const theirRow = perRow(theirs);
    const start = Math.floor(at / row) * theirRow;
    next = theirs[Math.min(theirs.length - 1, rowEnd ? start : start + theirRow - 1)];
  }
  if (key === 'ArrowUp' && !next && at < row) {
    document.querySelector<HTMLInputElement>('#q')?.focus();
    return;
  }
  next?.focus();
}

export function installKeyboard(actions: KeyActions): void {
  document.addEventListener('keydown', (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const active = document.activeElement;
    if (event.key === '/' && !typing(active)) {
      event.preventDefault();
      document.querySelector<HTMLInputElement>('#q')?.focus();
      return;
    }
    if (active instanceof HTMLInputElement && active.id === 'q' && event.key === 'ArrowDown') {
      const first = document.querySelector<HTMLElement>('.result');
      if (first) {
        event.preventDefault();
        first.focus();
      }
      return;
    }
    if (typing(active)) return;
    const card = active instanceof HTMLElement && active.classList.contains('result') ? active : null;
    if (card && event.key.startsWith('Arrow')) {
      event.preventDefault();
      move(card, event.key);
    } else if (card && event.key === 'Enter') {
      event.preventDefault();
      toggleExplain(card);
    } else if (card && (event.key === 'm' || event.key === 'M') && card.querySelector('.more-like')) {
      actions.moreLike(card.dataset.id!);
    } else if (event.key === 'Escape') {
      const open = document.querySelector<HTMLElement>('.result.open');
      if (open) toggleExplain(open, false);
      else document.querySelector<HTMLInputElement>('#q')?.focus();
    } else if (event.key === 'n' || event.key === 'N') actions.nextPage();
    else if (event.key === 'p' || event.key === 'P') actions.previousPage();
    else if (event.key === 'c' || event.key === 'C') actions.toggleCompare();
  });
}
