/**
 * The HNSW scan of an index folder (folder-store.ts): a usearch graph over the same segments
 * the exact scan reads, saved beside them as graph-NNNNNN.usearch and memory-mapped (`view`)
 * when it is current. String ids map to integer keys handed out once and never reused; every
 * segment item records its key, so the id ↔ key map is rebuilt from the segments on open and
 * a key always denotes one (id, vector).
 *
 * The graph holds its own copy of the vectors (f32, f16 or i8); the JavaScript heap holds none.
 * usearch's JavaScript binding cannot read a vector back (no `get`), so exact f32 rows come
 * from the segment files (positioned reads the page cache serves): for `get`, for re-scoring
 * the candidates of an f16 or i8 graph, and for filtered scans. The binding has no filtered
 * search either (no predicate callback), so filters work by oversampling (below).
 */
import { createRequire } from 'node:module';
import type * as UsearchModule from 'usearch';
import type { Index as NativeIndex, Matches } from 'usearch';
import { createError } from '../errors.js';
import { l2normalize } from '../models/encoder.js';
import type { HnswSettings } from './ann.js';
import { ExactIndex } from './exact-index.js';
import type { Hit } from './vector-store.js';

/** Exact rows (L2-normalised, row-major) of these ids, in order. */
export type RowReader = (ids: string[]) => Float32Array;

/** f16 and i8 graphs: candidates fetched per wanted result, then re-scored with f32 rows */
const RESCORE_FACTOR = 3;
/** ids drawn to estimate a filter's selectivity */
const SAMPLE = 1024;
/** save the graph at a flush once this share of its items changed since it was last saved */
const SAVE_SHARE = 0.5;
/** rows per native add call while (re)building */
const ADD_BLOCK = 16_384;

type Usearch = typeof UsearchModule;
let loaded: Usearch | undefined;
/** the native binding, loaded on first use: an exact index never needs it */
const usearch = (): Usearch => (loaded ??= createRequire(import.meta.url)('usearch') as Usearch);

function makeNative(dim: number, s: HnswSettings): NativeIndex {
  const u = usearch();
  const scalar = { f32: u.ScalarKind.F32, f16: u.ScalarKind.F16, i8: u.ScalarKind.I8 } as const;
  return new u.Index({
    dimensions: dim,
    metric: u.MetricKind.Cos,
    quantization: scalar[s.quantization],
    connectivity: s.connectivity,
    expansion_add: s.expansionAdd,
    expansion_search: s.expansionSearch,
    multi: false,
  });
}

/** How an opened graph came to match the segments (`duo index --json`, tests). */
export type GraphState = 'new' | 'current' | 'updated' | 'rebuilt';

export interface SearchPlans {
  /** plain graph searches */
  graph: number;
  /** filtered: the graph searched for more results, the filter applied after */
  oversampled: number;
  /** filtered: few rows pass, scanned exactly */
  exact: number;
  /** filtered: oversampling found too few, so the passing rows were scanned exactly */
  fallback: number;
}

export class HnswIndex {
  private native: NativeIndex;
  /** the file `native` memory-maps; a view is immutable, so a change loads it first */
  private viewed: string | undefined;
  private readonly keys = new Map<string, number>();
  private readonly idOf = new Map<number, string>();
  private readonly exact: ExactIndex;
  /** keys added or removed since the graph file was written */
  private changes = 0;
  /** the graph differs from every file: never saved, rebuilt, or brought up to date on open */
  private unsaved = true;
  state: GraphState = 'new';
  /** why a saved graph could not be used (it was rebuilt) */
  problem: string | undefined;
  readonly plans: SearchPlans = { graph: 0, oversampled: 0, exact: 0, fallback: 0 };

  constructor(
    readonly dim: number,
    readonly settings: HnswSettings,
    private readonly rows: RowReader,
    /** the first key not handed out yet */
    public nextKey = 0,
  ) {
    this.native = makeNative(dim, settings);
    this.exact = new ExactIndex(dim, false);
  }

  get size(): number {
    return this.keys.size;
  }

  has(id: string): boolean {
    return this.keys.has(id);
  }

  key(id: string): number | undefined {
    return this.keys.get(id);
  }

  ids(): IterableIterator<string> {
    return this.keys.keys();
  }

  /** Records an id's key from a segment without touching the graph (opening: the graph has it, or gets it from `restore`). */
  track(id: string, key: number): void {
    const old = this.keys.get(id);
    if (old !== undefined) this.idOf.delete(old);
    this.keys.set(id, key);
    this.idOf.set(key, id);
    if (key >= this.nextKey) this.nextKey = key + 1;
  }

  untrack(id: string): void {
    const key = this.keys.get(id);
    if (key === undefined) return;
    this.keys.delete(id);
    this.idOf.delete(key);
  }

  /** Adds vectors (checked and L2-normalised by the caller) under fresh keys; an id's old key leaves the graph. Returns the keys. */
  upsert(ids: string[], vectors: Float32Array[]): number[] {
    this.mutable();
    // a repeated id: the last vector wins, as in the exact scan
    const last = new Map<string, number>();
    ids.forEach((id, i) => last.set(id, i));
    const old = [...last.keys()].flatMap((id) => (this.keys.has(id) ? [this.keys.get(id)!] : []));
    if (old.length > 0) this.native.remove(BigUint64Array.from(old, BigInt));
    const order = [...last.values()];
    const fresh = order.map(() => this.nextKey++);
    const matrix = new Float32Array(order.length * this.dim);
    order.forEach((i, r) => matrix.set(vectors[i]!, r * this.dim));
    if (order.length > 0) this.native.add(BigUint64Array.from(fresh, BigInt), matrix, 0);
    order.forEach((i, r) => this.track(ids[i]!, fresh[r]!));
    this.changes += old.length + order.length;
    return ids.map((id) => this.keys.get(id)!);
  }

  remove(ids: string[]): number {
    const held = [...new Set(ids)].filter((id) => this.keys.has(id));
    if (held.length === 0) return 0;
    this.mutable();
    this.native.remove(BigUint64Array.from(held, (id) => BigInt(this.keys.get(id)!)));
    for (const id of held) this.untrack(id);
    this.changes += held.length;
    return held.length;
  }

  async search(queries: Float32Array[], k: number, keep?: (id: string) => boolean): Promise<Hit[][]> {
    for (const q of queries) if (q.length !== this.dim) throw createError('INDEX_DIM_MISMATCH', 'query', this.dim, q.length);
    const qs = queries.map((q) => l2normalize(Float32Array.from(q)));
    const n = this.size;
    const kk = Math.max(0, Math.min(Math.floor(k), n));
    if (kk === 0 || qs.length === 0) return qs.map(() => []);
    const need = this.settings.quantization === 'f32' ? kk : Math.min(n, kk * RESCORE_FACTOR);
    if (!keep) {
      this.plans.graph++;
      return this.graphSearch(qs, need, kk);
    }
    // filtered: a graph search that oversamples by the filter's estimated selectivity, unless so
    // few rows pass that reading and scanning them costs less (m² ≤ 4·k·n: reading m rows costs
    // about what searching the graph for k·n/m candidates does; 6,300 rows for k = 10 over 1M)
    const share = this.estimateShare(keep);
    if (share * n * share * n <= 4 * kk * n) {
      this.plans.exact++;
      return this.scanFiltered(qs, kk, keep);
    }
    this.plans.oversampled++;
    const want = Math.min(n, Math.ceil((2 * need) / share) + need);
    const found = this.graphSearch(qs, want, kk, keep);
    const short = found.flatMap((hits, i) => (hits.length < kk ? [i] : []));
    if (short.length > 0) {
      // too few of the candidates passed: the exact answer for those queries
      this.plans.fallback++;
      const exact = await this.scanFiltered(short.map((i) => qs[i]!), kk, keep);
      short.forEach((i, j) => (found[i] = exact[j]!));
    }
    return found;
  }

  /** The graph's `want` nearest per query, filtered, re-scored exactly when the graph is quantised, best `k` kept. */
  private graphSearch(qs: Float32Array[], want: number, k: number, keep?: (id: string) => boolean): Hit[][] {
    const flat = new Float32Array(qs.length * this.dim);
    qs.forEach((q, i) => flat.set(q, i * this.dim));
    // one query runs on this thread; a batch spreads over all cores
    const result = this.native.search(flat, want, qs.length === 1 ? 1 : 0);
    const batch = result instanceof usearch().BatchMatches ? result : undefined;
    const rescore = this.settings.quantization !== 'f32';
    const limit = rescore ? k * RESCORE_FACTOR : k;
    return qs.map((q, i) => {
      const m = batch ? batch.get(i) : (result as Matches);
      const hits: Hit[] = [];
      for (let j = 0; j < m.keys.length && hits.length < limit; j++) {
        const id = this.idOf.get(Number(m.keys[j]!));
        if (id !== undefined && (!keep || keep(id))) hits.push({ id, score: 1 - m.distances[j]! });
      }
      return rescore ? this.rescore(q, hits).slice(0, k) : hits.slice(0, k);
    });
  }

  private rescore(q: Float32Array, hits: Hit[]): Hit[] {
    const rows = this.rows(hits.map((h) => h.id));
    const d = this.dim;
    return hits
      .map((h, r) => {
        let s = 0;
        for (let j = 0; j < d; j++) s += q[j]! * rows[r * d + j]!;
        return { id: h.id, score: s };
      })
      .sort((a, b) => b.score - a.score);
  }

  /** Exact top k of the rows the filter keeps, read from the segments. */
  private async scanFiltered(qs: Float32Array[], k: number, keep: (id: string) => boolean): Promise<Hit[][]> {
    const ids: string[] = [];
    for (const id of this.keys.keys()) if (keep(id)) ids.push(id);
    const ranked = await this.exact.searchRows(qs, this.rows(ids), ids.length, k);
    return ranked.map((list) => list.map(({ row, score }) => ({ id: ids[row]!, score })));
  }

  /** The share of items a filter keeps, from up to SAMPLE ids drawn at random (seeded: the same state gives the same plan). */
  private estimateShare(keep: (id: string) => boolean): number {
    const n = this.size;
    let seen = 0;
    let kept = 0;
    if (n > SAMPLE) {
      let s = 0x9e3779b9;
      for (let tries = 0; tries < SAMPLE * 8 && seen < SAMPLE; tries++) {
        s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
        const id = this.idOf.get(Math.floor((s / 4294967296) * this.nextKey));
        if (id === undefined) continue;
        seen++;
        if (keep(id)) kept++;
      }
    }
    if (seen < SAMPLE / 4) {
      // few items, or keys too sparse to draw from: count them all
      seen = n;
      kept = 0;
      for (const id of this.keys.keys()) if (keep(id)) kept++;
    }
    return kept / seen;
  }

  /** Whether the store should write the graph at this flush (always when closing, if it changed). */
  saveDue(closing: boolean): boolean {
    if (this.unsaved) return true;
    return this.changes > 0 && (closing || this.changes >= SAVE_SHARE * Math.max(this.size, 1));
  }

  /**
   * Writes the graph (synchronously: no change can come in between the caller's check that
   * nothing is pending and the snapshot). Returns what the manifest records, and a function to
   * call once the manifest names the file.
   */
  save(path: string): { size: number; nextKey: number; saved: () => void } {
    this.native.save(path);
    const changes = this.changes;
    return {
      size: this.native.size(),
      nextKey: this.nextKey,
      saved: () => {
        this.changes -= changes;
        this.unsaved = false;
      },
    };
  }

  /**
   * Opens a saved graph for the ids and keys the segments hold (`track`ed already): memory-maps
   * it when it is current, loads it and brings it up to date when it is older (removing keys no
   * longer live, adding the live keys from its `nextKey` on), and rebuilds it from the segment
   * rows when it is missing or does not match.
   */
  restore(path: string | undefined, record: { bytes: number; nextKey: number; current: boolean } | undefined, fileBytes: number | undefined): void {
    if (!record && this.size === 0) return; // a new graph
    if (path && record) {
      try {
        if (fileBytes === undefined) throw new Error('the file is missing');
        if (fileBytes !== record.bytes) throw new Error(`${fileBytes} bytes, the manifest says ${record.bytes}`);
        const native = makeNative(this.dim, this.settings);
        if (record.current) native.view(path);
        else native.load(path);
        if (native.dimensions() !== this.dim) throw new Error(`dimension ${native.dimensions()}, the index ${this.dim}`);
        this.native = native;
        this.viewed = record.current ? path : undefined;
        if (!record.current) this.catchUp(record.nextKey);
        if (native.size() !== this.size) throw new Error(`holds ${native.size()} items, the segments ${this.size}`);
        this.state = record.current ? 'current' : 'updated';
        this.unsaved = !record.current;
        return;
      } catch (error) {
        this.problem = `${path}: ${error instanceof Error ? error.message : String(error)}`;
        this.viewed = undefined;
      }
    }
    this.rebuild();
  }

  /** A new graph with every live item, rows read from the segments. */
  rebuild(): void {
    this.native = makeNative(this.dim, this.settings);
    this.viewed = undefined;
    this.addRows([...this.keys]);
    this.state = 'rebuilt';
    this.unsaved = true;
  }

  private catchUp(savedNextKey: number): void {
    const gone: bigint[] = [];
    for (let key = 0; key < savedNextKey; key++) if (!this.idOf.has(key)) gone.push(BigInt(key));
    if (gone.length > 0) this.native.remove(BigUint64Array.from(gone));
    const fresh = [...this.keys].filter(([, key]) => key >= savedNextKey);
    this.addRows(fresh);
    this.changes = fresh.length + gone.length;
  }

  private addRows(entries: [string, number][]): void {
    for (let start = 0; start < entries.length; start += ADD_BLOCK) {
      const block = entries.slice(start, start + ADD_BLOCK);
      this.native.add(BigUint64Array.from(block, ([, key]) => BigInt(key)), this.rows(block.map(([id]) => id)), 0);
    }
  }

  private mutable(): void {
    if (!this.viewed) return;
    const native = makeNative(this.dim, this.settings);
    native.load(this.viewed);
    this.native = native;
    this.viewed = undefined;
  }

  /** whether the graph is memory-mapped from its file (not loaded) */
  get mapped(): boolean {
    return this.viewed !== undefined;
  }

  async dispose(): Promise<void> {
    await this.exact.dispose();
  }
}
