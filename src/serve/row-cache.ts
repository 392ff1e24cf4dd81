/**
 * Stage 2's stored image sides, kept in memory by a long-running server. The index reads a
 * candidate's row from disk at every query (a one-shot `duo search` should not load them all);
 * a server answering many queries over the same collection keeps the rows it read, decoded, in
 * an LRU bounded in bytes, like a database's buffer pool. A row is dropped when its item
 * changes: the engine reads each candidate's metadata (store.metadataOf) just before its rows, and an
 * item whose recorded size or mtime moved (re-indexed by another process) is read afresh.
 */
import { LRUCache } from 'lru-cache';
import type { Metadata } from '../index/filter.js';
import type { StoredItem, VectorStore } from '../index/vector-store.js';

export interface RowCacheStats {
  hits: number;
  misses: number;
}

/** The store with its `regions` answered from memory where it can; every other call goes straight through. */
export function withRowCache(store: VectorStore, maxBytes: number, stats: RowCacheStats = { hits: 0, misses: 0 }): VectorStore {
  if (maxBytes <= 0) return store;
  // each row carries the version of its item it was read for; the versions of items read lately
  // tag the rows read next (the engine reads metadata, then rows). Both bounded: a map of every
  // id ever seen would grow with the collection in a long-running server.
  const rows = new LRUCache<string, { row: Float32Array; version: string | undefined }>({ maxSize: maxBytes, sizeCalculation: (r) => Math.max(1, r.row.byteLength) });
  const recent = new LRUCache<string, string>({ max: 65_536 });
  const version = (metadata: Metadata) => `${metadata.bytes ?? ''}:${metadata.mtimeMs ?? ''}`;

  /** what a read of items' metadata says of their versions (undefined: no longer held) */
  const note = (ids: string[], metadata: (Metadata | undefined)[]) => {
    metadata.forEach((m, i) => {
      const id = ids[i]!;
      const v = m ? version(m) : undefined;
      if (rows.peek(id) && rows.peek(id)!.version !== v) rows.delete(id);
      if (v === undefined) recent.delete(id);
      else recent.set(id, v);
    });
  };
  const get = async (ids: string[]): Promise<(StoredItem | undefined)[]> => {
    const items = await store.get(ids);
    note(ids, items.map((item) => item?.metadata));
    return items;
  };
  const metadataOf = async (ids: string[]): Promise<(Metadata | undefined)[]> => {
    const metadata = await store.metadataOf(ids);
    note(ids, metadata);
    return metadata;
  };

  const regions = async (ids: string[], signal?: AbortSignal): Promise<(Float32Array | undefined)[]> => {
    const out = ids.map((id) => rows.get(id)?.row);
    const missing = ids.flatMap((id, i) => (out[i] ? [] : [i]));
    stats.hits += ids.length - missing.length;
    stats.misses += missing.length;
    if (missing.length > 0) {
      const read = await store.regions(missing.map((i) => ids[i]!), signal);
      missing.forEach((at, j) => {
        const row = read[j];
        out[at] = row;
        // a row read without its item's metadata just before has no version: the next get() drops it
        if (row) rows.set(ids[at]!, { row, version: recent.get(ids[at]!) });
      });
    }
    return out;
  };

  return new Proxy(store, {
    get(target, property) {
      if (property === 'regions') return regions;
      if (property === 'get') return get;
      if (property === 'metadataOf') return metadataOf;
      // read on the store itself: its getters and methods may use private fields
      const value: unknown = Reflect.get(target, property);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}
