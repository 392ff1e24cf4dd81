/**
 * The store seam: every backend (the exact file store now; HNSW and PostgreSQL later) is
 * async, so a local file and a database share one interface, and passes
 * test/contracts/vector-store.contract.ts.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { ensembleSpec, parseEnsembleSpec } from '../models/ensemble-encoder.js';
import type { Filter, Metadata } from './filter.js';

export interface Hit {
  id: string;
  score: number;
}

/** What a store holds: an index never mixes models, and records what stage 2 needs. */
/** A model folder is recorded as an absolute path (so the index opens from any directory); a hub id as it is. */
const onePath = (spec: string) => (existsSync(spec) ? resolve(spec) : spec);

/** A model spec as an index records it: folders made absolute (each member's, for an ensemble `a,b`), hub ids as given. */
export function recordedSpec(spec: string): string {
  const members = parseEnsembleSpec(spec);
  return members ? ensembleSpec(members.map((m) => ({ ...m, spec: onePath(m.spec) }))) : onePath(spec);
}

export interface StoreInfo {
  /** image files under `root`, or a caption collection (each item's text in metadata.text) */
  items: 'images' | 'captions';
  /** the encoder's id (its weights): queries from any other are refused */
  modelId: string;
  /** what the encoder was loaded from (hub id or folder), so the index can load it again */
  modelSpec: string;
  /** a projection-head folder applied on top of the model */
  headSpec?: string;
  dim: number;
  /** absolute folder the ids are relative to (images), or the collection's source (captions) */
  root: string;
  /** the cross-encoder the index was built for; when regionSize > 0 every item carries its image side (`regions`) */
  reranker?: { id: string; spec: string; regionSize: number };
}

export interface UpsertItem {
  id: string;
  vector: Float32Array;
  metadata?: Metadata;
  /** the cross-encoder's image side (info.reranker's layout), stored for stage 2 */
  regions?: Float32Array;
}

export interface StoredItem {
  id: string;
  vector: Float32Array;
  metadata: Metadata;
}

export interface StoreSearchOptions {
  filter?: Filter;
  signal?: AbortSignal;
}

export interface VectorStore {
  readonly info: StoreInfo;
  /** where it lives: a path, or a URL without credentials */
  readonly location: string;
  /** items held, or those a filter keeps */
  count(filter?: Filter): Promise<number>;
  /** insert or replace; vectors are L2-normalised on the way in, so scores are cosines */
  upsert(items: UpsertItem[]): Promise<void>;
  /** removes what exists; returns how many were removed */
  remove(ids: string[]): Promise<number>;
  /** one entry per id, in order; undefined where the id is not held */
  get(ids: string[]): Promise<(StoredItem | undefined)[]>;
  /**
   * each id's metadata, in order (undefined where the id is not held), without its vector: what
   * the engine reads for every candidate (a search's top 200 for the hubness correction), so a
   * store whose vectors live on disk reads no vector rows for it
   */
  metadataOf(ids: string[]): Promise<(Metadata | undefined)[]>;
  /** every id with its metadata (no vectors), for incremental indexing */
  list(): AsyncIterable<{ id: string; metadata: Metadata }>;
  /** one ranked list per query, best first (ties: insertion order), at most k each */
  search(queries: Float32Array[], k: number, options?: StoreSearchOptions): Promise<Hit[][]>;
  /** stage-2 image sides of these items, read from storage per call (undefined where missing) */
  regions(ids: string[], signal?: AbortSignal): Promise<(Float32Array | undefined)[]>;
  /** makes every change so far durable */
  flush(): Promise<void>;
  /** flushes (when writable) and releases files, locks and connections */
  close(): Promise<void>;
}
