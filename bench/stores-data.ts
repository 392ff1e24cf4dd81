/**
 * Synthetic embeddings with the structure of real ones, for the store benchmark: 2,000 cluster
 * centres around 64 topics, and each point its centre moved along a few directions shared by
 * the whole collection (real embeddings vary along a low-rank set of directions, so their
 * nearest neighbours are meaningful) plus a little isotropic noise. Seeded: the same seed gives
 * the same vectors, so every configuration (each in its own process) indexes identical data.
 *
 * Typical cosines at 256-d: a point and its nearest neighbour (of 1M) about 0.9; two points of
 * one cluster about 0.65; two random points about 0.1 (printed by the benchmark).
 */

export interface ClusterSpec {
  dim: number;
  seed: number;
  topics?: number;
  centres?: number;
  /** rank of the directions points vary along */
  rank?: number;
}

/** mulberry32 with Box–Muller normals: fast, seeded, good enough for test data */
export class Rng {
  private s: number;
  private spare: number | undefined;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  uniform(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  normal(): number {
    if (this.spare !== undefined) {
      const s = this.spare;
      this.spare = undefined;
      return s;
    }
    const u = Math.max(this.uniform(), 1e-12);
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }
}

function normalize(v: Float32Array, offset = 0, dim = v.length): void {
  let s = 0;
  for (let j = 0; j < dim; j++) s += v[offset + j]! ** 2;
  const n = Math.sqrt(s) || 1;
  for (let j = 0; j < dim; j++) v[offset + j]! /= n;
}

/** Rows [start, start + count) of the collection; any block is generated independently of the others. */
export class ClusteredVectors {
  readonly dim: number;
  private readonly centres: Float32Array;
  private readonly basis: Float32Array;
  private readonly rank: number;
  private readonly nCentres: number;

  constructor(private readonly spec: ClusterSpec) {
    const { dim, seed } = spec;
    this.dim = dim;
    const topics = spec.topics ?? 64;
    this.nCentres = spec.centres ?? 2000;
    this.rank = spec.rank ?? 24;
    const rng = new Rng(seed);
    const topic = new Float32Array(topics * dim).map(() => rng.normal());
    for (let t = 0; t < topics; t++) normalize(topic, t * dim, dim);
    this.centres = new Float32Array(this.nCentres * dim);
    for (let c = 0; c < this.nCentres; c++) {
      const t = Math.floor(rng.uniform() * topics);
      for (let j = 0; j < dim; j++) this.centres[c * dim + j] = topic[t * dim + j]! + (1.1 / Math.sqrt(dim)) * rng.normal();
      normalize(this.centres, c * dim, dim);
    }
    this.basis = new Float32Array(this.rank * dim).map(() => rng.normal() / Math.sqrt(dim));
  }

  /** rows × dim, L2-normalised; `stream` separates indexed rows from held-out queries */
  rows(start: number, count: number, stream = 0): Float32Array {
    const { dim, rank } = this;
    const out = new Float32Array(count * dim);
    const z = new Float32Array(rank);
    for (let i = 0; i < count; i++) {
      const rng = new Rng((this.spec.seed * 7919 + (start + i) * 2654435761 + stream * 97) >>> 0);
      rng.uniform();
      const c = Math.floor(rng.uniform() * this.nCentres);
      for (let r = 0; r < rank; r++) z[r] = rng.normal() * (0.55 / Math.sqrt(rank));
      const o = i * dim;
      for (let j = 0; j < dim; j++) {
        let v = this.centres[c * dim + j]! + (0.3 / Math.sqrt(dim)) * rng.normal();
        for (let r = 0; r < rank; r++) v += z[r]! * this.basis[r * dim + j]!;
        out[o + j] = v;
      }
      normalize(out, o, dim);
    }
    return out;
  }
}
