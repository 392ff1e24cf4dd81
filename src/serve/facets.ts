/**
 * Filter chips from the collection's metadata, read once from the store: the top folders (an id
 * prefix), metadata keys with a few string values (a camera, an album), years of `modified`,
 * and file size in thirds. Each chip carries the declarative filter it applies, so the page
 * sends it back as `where` unchanged.
 */
import type { Filter, Scalar } from '../index/filter.js';
import type { VectorStore } from '../index/vector-store.js';

export interface Facet {
  key: string;
  label: string;
  count: number;
  where: Filter;
}

/** items read at most: a larger collection's chips come from its first items */
const SCAN = 200_000;
/** a string key with more distinct values than this is not a chip set (ids, captions) */
const MAX_VALUES = 12;
const SKIP = new Set(['text', 'mtimeMs', 'modified', 'bytes']);

const kb = (bytes: number) => (bytes >= 1 << 20 ? `${(bytes / (1 << 20)).toFixed(1)} MB` : bytes >= 1024 ? `${Math.round(bytes / 1024)} kB` : `${bytes} B`);

export async function collectFacets(store: VectorStore): Promise<Facet[]> {
  const folders = new Map<string, number>();
  const values = new Map<string, Map<Scalar, number>>();
  const years = new Map<number, number>();
  const sizes: number[] = [];
  let seen = 0;
  for await (const { id, metadata } of store.list()) {
    if (++seen > SCAN) break;
    const slash = id.indexOf('/');
    if (slash > 0) folders.set(id.slice(0, slash), (folders.get(id.slice(0, slash)) ?? 0) + 1);
    for (const [key, value] of Object.entries(metadata)) {
      if (SKIP.has(key) || typeof value !== 'string') continue;
      let counts = values.get(key);
      if (!counts) values.set(key, (counts = new Map()));
      if (counts.size <= MAX_VALUES) counts.set(value, (counts.get(value) ?? 0) + 1);
    }
    if (typeof metadata.modified === 'string') {
      const year = Number(metadata.modified.slice(0, 4));
      if (Number.isInteger(year)) years.set(year, (years.get(year) ?? 0) + 1);
    }
    if (typeof metadata.bytes === 'number') sizes.push(metadata.bytes);
  }
  const facets: Facet[] = [];
  if (folders.size > 1) {
    for (const [folder, count] of [...folders].sort((a, b) => b[1] - a[1]).slice(0, MAX_VALUES)) {
      facets.push({ key: 'folder', label: folder, count, where: { id: { prefix: `${folder}/` } } });
    }
  }
  for (const [key, counts] of values) {
    if (counts.size < 2 || counts.size > MAX_VALUES) continue;
    for (const [value, count] of [...counts].sort((a, b) => b[1] - a[1])) facets.push({ key, label: String(value), count, where: { [key]: value } });
  }
  if (years.size > 1) {
    for (const [year, count] of [...years].sort((a, b) => b[0] - a[0]).slice(0, MAX_VALUES)) {
      facets.push({ key: 'year', label: String(year), count, where: { modified: { gte: `${year}-01-01`, lt: `${year + 1}-01-01` } } });
    }
  }
  if (sizes.length >= 3) {
    sizes.sort((a, b) => a - b);
    const [t1, t2] = [sizes[Math.floor(sizes.length / 3)]!, sizes[Math.floor((2 * sizes.length) / 3)]!];
    if (t1 < t2) {
      const below = (t: number) => sizes.filter((s) => s < t).length;
      facets.push({ key: 'size', label: `under ${kb(t1)}`, count: below(t1), where: { bytes: { lt: t1 } } });
      facets.push({ key: 'size', label: `${kb(t1)}–${kb(t2)}`, count: below(t2) - below(t1), where: { bytes: { gte: t1, lt: t2 } } });
      facets.push({ key: 'size', label: `${kb(t2)} and over`, count: sizes.length - below(t2), where: { bytes: { gte: t2 } } });
    }
  }
  return facets;
}
