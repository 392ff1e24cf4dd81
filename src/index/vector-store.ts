export interface Hit {
  id: string;
  score: number;
}

/**
 * A store of id → vector with top-k search by inner product (cosine for unit vectors).
 * Every implementation (exact now; ANN and PostgreSQL later) passes
 * test/contracts/vector-store.contract.ts.
 */
export interface VectorStore {
  readonly dim: number;
  readonly size: number;
  /** insert or replace */
  upsert(ids: string[], vectors: Float32Array[]): void;
  remove(ids: string[]): number;
  has(id: string): boolean;
  get(id: string): Float32Array | undefined;
  ids(): string[];
  /** one ranked list per query, best first; `filter` keeps only the ids it accepts */
  search(queries: Float32Array[], k: number, filter?: (id: string) => boolean): Promise<Hit[][]>;
}
