/**
 * `duo embed`: one shard of a collection's embeddings written as plain files, so many machines
 * can embed and one can index (`duo import`). The shard's images are those whose id hashes to
 * it (stable when files are added). Resumable: every checkpoint writes a part (rows and their
 * ids and metadata) under `<name>.parts/`; a rerun skips images already in a part with the same
 * size and mtime, then the parts are assembled into
 *
 *   <name>.npy          float32 [N, D], C order
 *   <name>.ids.txt      one id per row
 *   <name>.meta.jsonl   one {"id", "metadata"} per row
 *   <name>.json         model id and spec, dimension, rows, image root, shard
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { npyHeader } from '../data/npy.js';
import { walkImages } from '../data/walk-images.js';
import { createError } from '../errors.js';
import type { Encoder } from '../models/encoder.js';
import { writeFileAtomic, writeFileAtomicStream } from '../util/atomic-write.js';
import type { Metadata } from './filter.js';
import { indexImages, type ImageSink } from './index-images.js';
import { recordedSpec, type StoreInfo, type UpsertItem } from './vector-store.js';

export interface Shard {
  /** 1-based */
  index: number;
  count: number;
}

export interface ShardManifest {
  format: 'duo-embeddings';
  modelId: string;
  modelSpec: string;
  headSpec?: string;
  dim: number;
  rows: number;
  root: string;
  shard: Shard;
  createdAt: string;
}

export const shardName = (s: Shard) => (s.count === 1 ? 'embeddings' : `shard-${s.index}-of-${s.count}`);

export function parseShard(text: string | undefined): Shard {
  if (text === undefined) return { index: 1, count: 1 };
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  const shard = m ? { index: Number(m[1]), count: Number(m[2]) } : undefined;
  if (!shard || shard.count < 1 || shard.index < 1 || shard.index > shard.count) throw createError('BAD_ARGUMENT', '--shard', `expected i/n with 1 ≤ i ≤ n, got "${text}"`);
  return shard;
}

/** Which shard an id belongs to: the first four bytes of its SHA-1, modulo the shard count. */
export const inShard = (id: string, s: Shard) => createHash('sha1').update(id).digest().readUInt32BE(0) % s.count === s.index - 1;

interface PartRow {
  id: string;
  metadata: Metadata;
}

/** Collects encoded rows and writes a part file at every flush. */
class PartWriter implements ImageSink {
  private rows: UpsertItem[] = [];
  constructor(
    readonly info: StoreInfo,
    readonly location: string,
    private next: number,
  ) {}

  async upsert(items: UpsertItem[]): Promise<void> {
    this.rows.push(...items);
  }

  async flush(): Promise<void> {
    if (this.rows.length === 0) return;
    const name = String(this.next++).padStart(6, '0');
    const vectors = new Float32Array(this.rows.length * this.info.dim);
    this.rows.forEach((r, i) => vectors.set(r.vector, i * this.info.dim));
    // rows first, then the index of them: a part whose .jsonl exists is complete
    await writeFileAtomic(join(this.location, `${name}.f32`), new Uint8Array(vectors.buffer));
    await writeFileAtomic(join(this.location, `${name}.jsonl`), this.rows.map((r) => JSON.stringify({ id: r.id, metadata: r.metadata ?? {} })).join('\n') + '\n');
    this.rows = [];
  }
}

async function readParts(dir: string, dim: number): Promise<{ rows: PartRow[]; vectors: Float32Array[] }[]> {
  if (!existsSync(dir)) return [];
  const names = (await readdir(dir)).filter((f) => /^\d{6}\.jsonl$/.test(f)).sort();
  const parts = [];
  for (const f of names) {
    const rows = (await readFile(join(dir, f), 'utf8')).trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as PartRow);
    const raw = await readFile(join(dir, f.replace('.jsonl', '.f32')));
    if (raw.length !== rows.length * dim * 4) throw createError('INDEX_CORRUPT', join(dir, f), `${rows.length} rows but ${raw.length} bytes of vectors`);
    const all = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
    parts.push({ rows, vectors: rows.map((_, i) => all.subarray(i * dim, (i + 1) * dim)) });
  }
  return parts;
}

export interface EmbedOptions {
  root: string;
  out: string;
  encoder: Encoder;
  modelSpec: string;
  headSpec?: string;
  shard?: Shard;
  batchSize?: number;
  checkpointEvery?: number;
  maxPixels?: number;
  onProgress?: (done: number, total: number) => void;
}

export async function embedShard(o: EmbedOptions): Promise<{ name: string; rows: number; encoded: number; reused: number; failed: { id: string; error: string }[] }> {
  const shard = o.shard ?? { index: 1, count: 1 };
  const name = shardName(shard);
  const root = resolve(o.root);
  const partsDir = join(o.out, `${name}.parts`);
  await mkdir(partsDir, { recursive: true });
  const manifestPath = join(o.out, `${name}.json`);
  const manifest: ShardManifest = { format: 'duo-embeddings', modelId: o.encoder.id, modelSpec: recordedSpec(o.modelSpec), headSpec: o.headSpec, dim: o.encoder.dim, rows: 0, root, shard, createdAt: new Date().toISOString() };
  if (existsSync(manifestPath)) {
    const before = JSON.parse(await readFile(manifestPath, 'utf8')) as ShardManifest;
    if (before.modelId !== o.encoder.id) throw createError('INDEX_MODEL_MISMATCH', manifestPath, before.modelId, o.encoder.id);
    if (before.root !== root) throw createError('BAD_ARGUMENT', '--out', `${o.out} holds embeddings of ${before.root}, not ${root}`);
  }
  // what the walk could not read (an unreadable folder, a symlink loop) is reported once, by the shard its id falls in
  const unreadable: { id: string; error: string }[] = [];
  const walked = (await walkImages(root, (s) => unreadable.push(s))).filter((f) => inShard(f.id, shard));
  // ids.txt holds one id a line: a file name with a line break cannot be listed there
  const unlistable = walked.filter((f) => /[\r\n]/.test(f.id));
  const files = walked.filter((f) => !/[\r\n]/.test(f.id));
  const parts = await readParts(partsDir, o.encoder.dim);
  const done = new Map<string, Metadata>();
  for (const p of parts) for (const r of p.rows) done.set(r.id, r.metadata);
  const todo = files.filter((f) => {
    const m = done.get(f.id);
    return !(m && m.bytes === f.size && m.mtimeMs === f.mtimeMs);
  });
  const writer = new PartWriter({ items: 'images', modelId: o.encoder.id, modelSpec: manifest.modelSpec, dim: o.encoder.dim, root }, partsDir, parts.length + 1);
  const { encoded, failed } = await indexImages(
    writer,
    todo.map((f) => ({ id: f.id, source: f.path, metadata: { bytes: f.size, mtimeMs: f.mtimeMs, modified: new Date(f.mtimeMs).toISOString() } })),
    { encoder: o.encoder, batchSize: o.batchSize, maxPixels: o.maxPixels, checkpointEvery: o.checkpointEvery ?? 512, onProgress: o.onProgress },
  );
  await writer.flush();
  failed.push(...unreadable.filter((s) => inShard(s.id, shard)));
  failed.push(...unlistable.map((f) => ({ id: f.id, error: 'the file name contains a line break, which ids.txt cannot hold' })));

  // assemble: the newest row of each id still on disk, in id order
  const latest = new Map<string, { metadata: Metadata; vector: Float32Array }>();
  for (const p of await readParts(partsDir, o.encoder.dim)) p.rows.forEach((r, i) => latest.set(r.id, { metadata: r.metadata, vector: p.vectors[i]! }));
  const ids = files.map((f) => f.id).filter((id) => latest.has(id));
  await writeFileAtomicStream(join(o.out, `${name}.npy`), async (write) => {
    await write(npyHeader(ids.length, o.encoder.dim));
    for (const id of ids) {
      const v = latest.get(id)!.vector;
      await write(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
    }
  });
  await writeFileAtomic(join(o.out, `${name}.ids.txt`), ids.map((id) => `${id}\n`).join(''));
  await writeFileAtomic(join(o.out, `${name}.meta.jsonl`), ids.map((id) => `${JSON.stringify({ id, metadata: latest.get(id)!.metadata })}\n`).join(''));
  await writeFileAtomic(manifestPath, `${JSON.stringify({ ...manifest, rows: ids.length }, null, 1)}\n`);
  return { name, rows: ids.length, encoded, reused: files.length - todo.length, failed };
}
