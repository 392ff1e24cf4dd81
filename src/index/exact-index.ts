/**
 * Exact inner-product search over a dense row-major Float32 matrix. Large scans run as one
 * Gemm+TopK on onnxruntime-node (vectorised, multithreaded: 10x faster for one query over
 * 100k×512 and 160x for a batch of 256 here, see bench/results/search.json); small ones in
 * JavaScript, where a session call would cost more than the scan.
 */
import { createError } from '../errors.js';
import { l2normalize } from '../models/encoder.js';
import { OrtTopK } from './ort-top-k.js';
import { TopK } from './top-k.js';
import type { Hit } from './vector-store.js';

/** 256 rows × 512 dims × 4 bytes = 512 KiB: a block stays in L2 while every query passes over it. */
const BLOCK_ROWS = 256;
/**
 * Below this many multiply-adds (queries × rows × dim) the JS scan wins: it takes about
 * 0.25 ms here, about what a session call costs in tensor set-up and thread wake-up.
 */
const ORT_MIN_MACS = 1 << 17;

export type ScanBackend = 'auto' | 'js' | 'ort';

/** The in-memory matrix behind the exact store (src/index/exact-store.ts), which adds files, metadata and filters. */
export class ExactIndex {
  /** this index's own Gemm+TopK session, made on first use (not shared module state) */
  private ort?: Promise<OrtTopK>;

  private data: Float32Array;
  private rowIds: string[] = [];
  private rowOf = new Map<string, number>();

  /** which scan runs searches; 'auto' picks by the amount of work */
  backend: ScanBackend = 'auto';

  constructor(
    readonly dim: number,
    /** normalise vectors on the way in so scores are cosines */
    readonly normalize = true,
  ) {
    if (!Number.isInteger(dim) || dim <= 0) throw createError('BAD_ARGUMENT', 'dim', `must be a positive integer, got ${dim}`);
    this.data = new Float32Array(dim * 64);
  }

  /** Rebuilds an index from saved rows (already normalised if they were when saved). */
  static fromRows(dim: number, ids: string[], matrix: Float32Array, normalize = true): ExactIndex {
    if (matrix.length !== ids.length * dim) {
      throw createError('INDEX_DIM_MISMATCH', 'matrix', ids.length * dim, matrix.length);
    }
    const index = new ExactIndex(dim, normalize);
    index.data = matrix;
    index.rowIds = [...ids];
    ids.forEach((id, row) => index.rowOf.set(id, row));
    if (index.rowOf.size !== ids.length) throw createError('BAD_ARGUMENT', 'ids', 'contains duplicates');
    return index;
  }

  get size(): number {
    return this.rowIds.length;
  }

  /** The live rows as one matrix (a view; valid until the next upsert). */
  matrix(): Float32Array {
    return this.data.subarray(0, this.size * this.dim);
  }

  ids(): string[] {
    return [...this.rowIds];
  }

  has(id: string): boolean {
    return this.rowOf.has(id);
  }

  get(id: string): Float32Array | undefined {
    const row = this.rowOf.get(id);
    return row === undefined ? undefined : this.data.slice(row * this.dim, (row + 1) * this.dim);
  }

  upsert(ids: string[], vectors: Float32Array[]): void {
    // every vector is checked before any is stored: a rejected batch changes nothing
    checkVectors(ids, vectors, this.dim);
    for (let i = 0; i < ids.length; i++) {
      const v = vectors[i]!;
      const id = ids[i]!;
      let row = this.rowOf.get(id);
      if (row === undefined) {
        row = this.rowIds.length;
        this.grow(row + 1);
        this.rowIds.push(id);
        this.rowOf.set(id, row);
      }
      const target = this.data.subarray(row * this.dim, (row + 1) * this.dim);
      target.set(v);
      if (this.normalize) l2normalize(target);
    }
  }

  remove(ids: string[]): number {
    let removed = 0;
    for (const id of ids) {
      const row = this.rowOf.get(id);
      if (row === undefined) continue;
      const last = this.rowIds.length - 1;
      if (row !== last) {
        this.data.copyWithin(row * this.dim, last * this.dim, (last + 1) * this.dim);
        const moved = this.rowIds[last]!;
        this.rowIds[row] = moved;
        this.rowOf.set(moved, row);
      }
      this.rowIds.pop();
      this.rowOf.delete(id);
      removed++;
    }
    return removed;
  }

  async search(queries: Float32Array[], k: number, filter?: (id: string) => boolean): Promise<Hit[][]> {
    for (const q of queries) if (q.length !== this.dim) throw createError('INDEX_DIM_MISMATCH', 'query', this.dim, q.length);
    const qs = queries.map((q) => (this.normalize ? l2normalize(Float32Array.from(q)) : q));
    // a filter scans only the rows it keeps: gather them into their own matrix
    let rows: Int32Array | undefined;
    if (filter) rows = Int32Array.from(this.rowIds.flatMap((id, row) => (filter(id) ? [row] : [])));
    const n = rows ? rows.length : this.size;
    const kk = Math.max(0, Math.min(Math.floor(k), n));
    if (kk === 0 || qs.length === 0) return qs.map(() => []);
    const ranked = await this.searchRows(qs, rows ? this.gather(rows) : this.matrix(), n, kk);
    return ranked.map((list) => list.map(({ row, score }) => ({ id: this.rowIds[rows ? rows[row]! : row]!, score })));
  }

  /**
   * Exact top k of `n` rows that are not this index's own (already normalised), with this
   * index's scan backend and session: the HNSW store's filtered scans and re-scoring use it.
   */
  async searchRows(qs: Float32Array[], matrix: Float32Array, n: number, k: number): Promise<{ row: number; score: number }[][]> {
    const kk = Math.max(0, Math.min(Math.floor(k), n));
    if (kk === 0) return qs.map(() => []);
    const useOrt = this.backend === 'ort' || (this.backend === 'auto' && n * qs.length * this.dim >= ORT_MIN_MACS);
    return useOrt ? this.scanOrt(qs, matrix, n, kk) : this.scanJs(qs, matrix, n, kk);
  }

  private gather(rows: Int32Array): Float32Array {
    const out = new Float32Array(rows.length * this.dim);
    rows.forEach((r, i) => out.set(this.data.subarray(r * this.dim, (r + 1) * this.dim), i * this.dim));
    return out;
  }

  /** Scores in blocks of rows so a batch of queries shares each block while it is in cache. */
  private scanJs(qs: Float32Array[], data: Float32Array, n: number, k: number): { row: number; score: number }[][] {
    const heaps = qs.map(() => new TopK(k));
    const dim = this.dim;
    for (let start = 0; start < n; start += BLOCK_ROWS) {
      const end = Math.min(start + BLOCK_ROWS, n);
      for (let qi = 0; qi < qs.length; qi++) {
        const q = qs[qi]!;
        const heap = heaps[qi]!;
        for (let row = start; row < end; row++) {
          const score = dot(q, data, row * dim, dim);
          if (score >= heap.threshold) heap.push(score, row);
        }
      }
    }
    return heaps.map((h) => h.sorted());
  }

  private async scanOrt(qs: Float32Array[], data: Float32Array, n: number, k: number): Promise<{ row: number; score: number }[][]> {
    this.ort ??= OrtTopK.create();
    const flat = new Float32Array(qs.length * this.dim);
    qs.forEach((q, i) => flat.set(q, i * this.dim));
    const out = await (await this.ort).search(flat, qs.length, data, n, this.dim, k);
    return out.map(({ rows, scores }) => rows.map((row, i) => ({ row, score: scores[i]! })));
  }

  async dispose(): Promise<void> {
    const ort = this.ort;
    this.ort = undefined;
    if (ort) await (await ort).dispose();
  }

  private grow(rows: number): void {
    if (rows * this.dim <= this.data.length) return;
    const next = new Float32Array(Math.max(rows * this.dim, this.data.length * 2));
    next.set(this.data);
    this.data = next;
  }
}

/** Throws, naming the item, on a vector of the wrong dimension or with NaN or infinity. */
export function checkVectors(ids: string[], vectors: Float32Array[], dim: number): void {
  if (ids.length !== vectors.length) throw createError('BAD_ARGUMENT', 'upsert', `${ids.length} ids for ${vectors.length} vectors`);
  for (let i = 0; i < ids.length; i++) {
    const v = vectors[i]!;
    if (v.length !== dim) throw createError('INDEX_DIM_MISMATCH', `vector for ${ids[i]}`, dim, v.length);
    for (let j = 0; j < v.length; j++) {
      if (!Number.isFinite(v[j]!)) throw createError('BAD_ARGUMENT', `vector for ${ids[i]}`, 'contains NaN or infinity');
    }
  }
}

/** Four accumulators break the floating-point add dependency chain (about 1.2x over one, measured). */
export function dot(q: Float32Array, m: Float32Array, offset: number, dim: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let j = 0;
  for (; j + 3 < dim; j += 4) {
    s0 += q[j]! * m[offset + j]!;
    s1 += q[j + 1]! * m[offset + j + 1]!;
    s2 += q[j + 2]! * m[offset + j + 2]!;
    s3 += q[j + 3]! * m[offset + j + 3]!;
  }
  for (; j < dim; j++) s0 += q[j]! * m[offset + j]!;
  return s0 + s1 + s2 + s3;
}
