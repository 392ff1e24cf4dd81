/** Filter chips from the collection's metadata: one chip per facet value; chips of one facet exclude each other, facets combine. */
import type { Facet, Filter } from './api.js';
import { h } from './dom.js';

export const chipKey = (f: Facet) => `${f.key}:${f.label}`;

/** the filter of the chosen chips (the last chosen of a facet wins) */
export function whereOf(facets: Facet[], chosen: string[]): Filter | undefined {
  const byFacet = new Map<string, Facet>();
  for (const key of chosen) {
    const f = facets.find((x) => chipKey(x) === key);
    if (f) byFacet.set(f.key, f);
  }
  if (byFacet.size === 0) return undefined;
  return Object.assign({}, ...[...byFacet.values()].map((f) => f.where)) as Filter;
}

/** chip buttons; `toggle` gets the new list of chosen keys */
export function chipBar(facets: Facet[], chosen: string[], toggle: (next: string[]) => void): HTMLElement {
  const groups = new Map<string, Facet[]>();
  for (const f of facets) groups.set(f.key, [...(groups.get(f.key) ?? []), f]);
  return h(
    'div',
    { class: 'chips', role: 'group', 'aria-label': 'filters' },
    ...[...groups].map(([key, list]) =>
      h(
        'div',
        { class: 'chip-group' },
        h('span', { class: 'chip-label' }, key),
        ...list.map((f) => {
          const on = chosen.includes(chipKey(f));
          const b = h('button', { type: 'button', class: `chip${on ? ' on' : ''}`, 'aria-pressed': String(on), 'data-chip': chipKey(f) }, f.label, h('span', { class: 'count' }, String(f.count)));
          b.addEventListener('click', () => {
            const others = chosen.filter((c) => !c.startsWith(`${f.key}:`));
            toggle(on ? others : [...others, chipKey(f)]);
          });
          return b;
        }),
      ),
    ),
  );
}
