/**
 * Exact inner-product search over a dense row-major Float32 matrix. Queries are scored in
 * blocks of corpus rows so that a batch of queries shares each block while it is in cache
 * (the matrix product Q·Cᵀ, tiled), and a bounded heap keeps each query's top k.
 */
import { createError } from '../errors.js';
import { l2normalize } from '../models/encoder.js';
import { TopK } from './top-k.js';
import type { Hit, VectorStore } from './vector-store.js';

/** 256 rows × 512 dims × 4 bytes = 512 KiB: a block stays in L2 while every query passes over it. */
const BLOCK_ROWS = 256;

export class ExactIndex implements VectorStore {
  private data: Float32Array;
  private rowIds: string[] = [];
  private rowOf = new Map<string, number>();

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
    if (ids.length !== vectors.length) throw createError('BAD_ARGUMENT', 'upsert', `${ids.length} ids for ${vectors.length} vectors`);
    for (let i = 0; i < ids.length; i++) {
      const v = vectors[i]!;
      if (v.length !== this.dim) throw createError('INDEX_DIM_MISMATCH', `vector for ${ids[i]}`, this.dim, v.length);
      for (let j = 0; j < v.length; j++) {
        if (!Number.isFinite(v[j]!)) throw createError('BAD_ARGUMENT', `vector for ${ids[i]}`, 'contains NaN or infinity');
      }
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

  search(queries: Float32Array[], k: number, filter?: (id: string) => boolean): Hit[][] {
    for (const q of queries) if (q.length !== this.dim) throw createError('INDEX_DIM_MISMATCH', 'query', this.dim, q.length);
    const kk = Math.max(0, Math.min(Math.floor(k), this.size));
    const heaps = queries.map(() => new TopK(kk));
    const allowed = filter ? Uint8Array.from(this.rowIds, (id) => (filter(id) ? 1 : 0)) : undefined;
    const qs = queries.map((q) => (this.normalize ? l2normalize(Float32Array.from(q)) : q));
    const { data, dim, size } = this;
    for (let start = 0; start < size; start += BLOCK_ROWS) {
      const end = Math.min(start + BLOCK_ROWS, size);
      for (let qi = 0; qi < qs.length; qi++) {
        const q = qs[qi]!;
        const heap = heaps[qi]!;
        for (let row = start; row < end; row++) {
          if (allowed && allowed[row] === 0) continue;
          const score = dot(q, data, row * dim, dim);
          if (score >= heap.threshold) heap.push(score, row);
        }
      }
    }
    return heaps.map((h) => h.sorted().map(({ row, score }) => ({ id: this.rowIds[row]!, score })));
  }

  private grow(rows: number): void {
    if (rows * this.dim <= this.data.length) return;
    const next = new Float32Array(Math.max(rows * this.dim, this.data.length * 2));
    next.set(this.data);
    this.data = next;
  }
}

/** Four accumulators break the add dependency chain: about 2x over a plain loop in V8. */
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
