/**
 * The exact store: every vector in memory (ExactIndex scans them), on disk as a folder of
 * append-only segments under a manifest (manifest.ts, segment-file.ts).
 *
 *   photos.duo/manifest.json       what the index holds and which segments make it
 *   photos.duo/000001.seg          vectors, ids, metadata, deletions of one flush
 *   photos.duo/000001.stage2       the cross-encoder's image side of the same rows (fp16)
 *   photos.duo/write.lock          held by the one process that may write (proper-lockfile)
 *
 * A flush appends one segment and commits it by replacing the manifest; a killed writer
 * leaves at most an uncommitted segment, deleted by the next writer. When segments pile up
 * or a quarter of the stored rows are dead, a flush compacts them into one. Stage-2 rows stay
 * on disk: a query reads only its candidates' rows.
 */
import { existsSync, statSync } from 'node:fs';
import { mkdir, open, readdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import lockfile from 'proper-lockfile';
import { createError, DuoError } from '../errors.js';
import { ExactIndex, type ScanBackend } from './exact-index.js';
import { isEmptyFilter, matches, type Filter, type Metadata } from './filter.js';
import { INDEX_FORMAT_VERSION, MANIFEST, readManifest, writeManifest, type Manifest } from './manifest.js';
import { readSegment, segmentName, Stage2Reader, writeSegment, writeStage2 } from './segment-file.js';
import type { Hit, StoredItem, StoreInfo, StoreSearchOptions, UpsertItem, VectorStore } from './vector-store.js';

export interface CompactionPolicy {
  /** compact when more segments than this */
  maxSegments: number;
  /** compact when more than this share of stored rows is dead (replaced or removed) */
  maxDeadShare: number;
}

export const DEFAULT_COMPACTION: CompactionPolicy = { maxSegments: 16, maxDeadShare: 0.25 };

const LOCK = 'write.lock';

/** an item being compacted: its stage-2 row is read from the old segment only when written */
type LazyItem = { id: string; metadata: Metadata; vector: Float32Array; regions: () => Promise<Float32Array | undefined> };
const SEGMENT_FILE = /^\d{6}\.(seg|stage2)$/;
/** write-file-atomic's temporaries (`<file>.<hash>`) and the streamed ones (`.<file>.<pid>.<time>.tmp`) */
const TEMPORARY_FILE = /^((\d{6}\.(seg|stage2)|manifest\.json)\.[0-9a-f]+|\..+\.tmp)$/;

export interface OpenOptions {
  /** take the write lock (one writer per index across processes) */
  write?: boolean;
  /** create the index with this identity when the folder does not exist yet */
  create?: StoreInfo;
  compaction?: CompactionPolicy;
  /** which scan answers searches (default: chosen by the amount of work) */
  scan?: ScanBackend;
}

export class ExactStore implements VectorStore {
  private readonly index: ExactIndex;
  private readonly metadata = new Map<string, Metadata>();
  /** where each live item's stage-2 row is on disk */
  private readonly rowOf = new Map<string, { segment: string; row: number }>();
  private readonly stage2 = new Map<string, Stage2Reader>();
  /** changes since the last flush (the in-memory store keeps everything here) */
  private pending: Changes = { upserts: new Map(), deleted: new Set() };
  /** the changes a flush is writing: still read from here until they are committed */
  private flushing?: Changes;
  /** flushes and compactions run one at a time */
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    readonly location: string,
    readonly info: StoreInfo,
    private manifest: Manifest | undefined,
    private readonly lock: Lock | undefined,
    private readonly compaction: CompactionPolicy,
    scan: ScanBackend = 'auto',
  ) {
    this.index = new ExactIndex(info.dim);
    this.index.backend = scan;
  }

  /** A store that lives in memory only (evaluation, ranking a list of images). */
  static memory(info: StoreInfo, options: Pick<OpenOptions, 'scan'> = {}): ExactStore {
    return new ExactStore('<memory>', info, undefined, undefined, DEFAULT_COMPACTION, options.scan);
  }

  /** Opens an index folder (read-only unless `write`); `create` makes it when it does not exist. */
  static async open(path: string, options: OpenOptions = {}): Promise<ExactStore> {
    const dir = resolve(path);
    if (existsSync(dir) && !statSync(dir).isDirectory()) await refuseFile(path);
    const exists = existsSync(join(dir, MANIFEST));
    if (!exists && !options.create) {
      if (!existsSync(dir)) throw createError('FILE_NOT_FOUND', path);
      throw createError('INDEX_CORRUPT', path, `no ${MANIFEST}: not a duo index folder`);
    }
    let lock: Lock | undefined;
    if (options.write || !exists) {
      await mkdir(dir, { recursive: true });
      lock = await takeLock(path, dir);
    }
    // a reader can meet a compaction between reading the manifest and opening the segments it
    // names (the writer deletes them after committing the new manifest): it reads the manifest again
    for (let attempt = 1; ; attempt++) {
      try {
        let manifest: Manifest;
        if (existsSync(join(dir, MANIFEST))) manifest = await readManifest(dir);
        else {
          const now = new Date().toISOString();
          manifest = { format: 'duo-index', formatVersion: INDEX_FORMAT_VERSION, info: options.create!, segments: [], nextSegment: 1, createdAt: now, updatedAt: now };
          await writeManifest(dir, manifest);
        }
        const store = new ExactStore(dir, manifest.info, manifest, lock, options.compaction ?? DEFAULT_COMPACTION, options.scan);
        if (lock) await store.removeLeftovers();
        try {
          await store.load();
        } catch (error) {
          await store.closeFiles();
          throw error;
        }
        return store;
      } catch (error) {
        const moved = error instanceof DuoError && / missing$/.test(error.message);
        if (!lock && moved && attempt < 5) continue;
        await lock?.release();
        throw error;
      }
    }
  }

  private get dir(): string | undefined {
    return this.manifest ? this.location : undefined;
  }

  private async load(): Promise<void> {
    for (const seg of this.manifest!.segments) {
      const data = await readSegment(join(this.location, `${seg.name}.seg`), seg.checksum);
      if (data.dim !== this.info.dim) throw createError('INDEX_DIM_MISMATCH', join(this.location, `${seg.name}.seg`), this.info.dim, data.dim);
      this.forget(data.deleted);
      const ids = data.items.map((i) => i.id);
      const vectors = ids.map((_, r) => data.vectors.subarray(r * data.dim, (r + 1) * data.dim));
      this.index.upsert(ids, vectors);
      data.items.forEach((item, row) => {
        this.metadata.set(item.id, item.metadata);
        this.rowOf.set(item.id, { segment: seg.name, row });
      });
      if (this.info.reranker?.regionSize && data.items.length > 0) {
        const r = this.info.reranker;
        this.stage2.set(seg.name, await Stage2Reader.open(join(this.location, `${seg.name}.stage2`), r.id, r.regionSize, data.items.length));
      }
    }
  }

  private forget(ids: Iterable<string>): number {
    const list = [...ids];
    for (const id of list) {
      this.metadata.delete(id);
      this.rowOf.delete(id);
    }
    return this.index.remove(list);
  }

  /** Files of a writer that died before committing them: uncommitted segments and temporary files. */
  private async removeLeftovers(): Promise<void> {
    const named = new Set(this.manifest!.segments.flatMap((s) => [`${s.name}.seg`, `${s.name}.stage2`]));
    for (const f of await readdir(this.location)) {
      if ((SEGMENT_FILE.test(f) && !named.has(f)) || TEMPORARY_FILE.test(f)) await rm(join(this.location, f), { force: true });
    }
  }

  private assertOpen(): void {
    if (this.closed) throw createError('BAD_ARGUMENT', this.location, 'the store is closed');
  }

  private assertWritable(): void {
    this.assertOpen();
    if (this.manifest && !this.lock) throw createError('BAD_ARGUMENT', this.location, 'opened read-only');
  }

  private serial<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work, work);
    this.queue = run.catch(() => {});
    return run;
  }

  async count(filter?: Filter): Promise<number> {
    this.assertOpen();
    if (isEmptyFilter(filter)) return this.index.size;
    let n = 0;
    for (const [id, m] of this.metadata) if (matches(filter, id, m)) n++;
    return n;
  }

  async upsert(items: UpsertItem[]): Promise<void> {
    this.assertWritable();
    const size = this.info.reranker?.regionSize;
    for (const item of items) {
      if (size && item.regions?.length !== size) {
        throw createError('INDEX_DIM_MISMATCH', `stage-2 regions of ${item.id}`, size, item.regions?.length ?? 0);
      }
    }
    // validates dimensions and finiteness before anything is recorded
    this.index.upsert(items.map((i) => i.id), items.map((i) => i.vector));
    for (const item of items) {
      this.metadata.set(item.id, item.metadata ?? {});
      this.rowOf.delete(item.id);
      this.pending.upserts.set(item.id, { ...item, vector: this.index.get(item.id)!, metadata: item.metadata ?? {} });
    }
  }

  async remove(ids: string[]): Promise<number> {
    this.assertWritable();
    const held = ids.filter((id) => this.metadata.has(id));
    for (const id of held) {
      this.pending.upserts.delete(id);
      this.pending.deleted.add(id);
    }
    return this.forget(held);
  }

  async get(ids: string[]): Promise<(StoredItem | undefined)[]> {
    this.assertOpen();
    return ids.map((id) => {
      const vector = this.index.get(id);
      return vector ? { id, vector, metadata: this.metadata.get(id) ?? {} } : undefined;
    });
  }

  async *list(): AsyncIterable<{ id: string; metadata: Metadata }> {
    this.assertOpen();
    for (const [id, metadata] of [...this.metadata]) yield { id, metadata };
  }

  async search(queries: Float32Array[], k: number, options: StoreSearchOptions = {}): Promise<Hit[][]> {
    this.assertOpen();
    options.signal?.throwIfAborted();
    const { filter } = options;
    const keep = isEmptyFilter(filter) ? undefined : (id: string) => matches(filter, id, this.metadata.get(id));
    return this.index.search(queries, k, keep);
  }

  async regions(ids: string[], signal?: AbortSignal): Promise<(Float32Array | undefined)[]> {
    this.assertOpen();
    signal?.throwIfAborted();
    return Promise.all(
      ids.map((id) => {
        const pending = this.pending.upserts.get(id) ?? this.flushing?.upserts.get(id);
        if (pending) return pending.regions;
        const at = this.rowOf.get(id);
        const reader = at && this.stage2.get(at.segment);
        return reader ? reader.read(at.row) : undefined;
      }),
    );
  }

  async flush(): Promise<void> {
    this.assertOpen();
    if (!this.dir || !this.lock) return;
    await this.serial(() => this.flushNow());
  }

  private async flushNow(): Promise<void> {
    const batch = this.pending;
    if (batch.upserts.size === 0 && batch.deleted.size === 0) return;
    // changes made while this flush writes go to a fresh pending set, for the next flush
    this.pending = { upserts: new Map(), deleted: new Set() };
    this.flushing = batch;
    const m = this.manifest!;
    const name = segmentName(m.nextSegment);
    const items = [...batch.upserts.values()];
    try {
      const checksum = await this.writeSegmentFiles(name, items, [...batch.deleted]);
      await this.commit([...m.segments, { name, rows: items.length, deleted: batch.deleted.size, checksum }], m.nextSegment + 1);
    } catch (error) {
      // nothing was committed: the batch goes back under anything newer
      for (const [id, item] of batch.upserts) if (!this.pending.upserts.has(id) && !this.pending.deleted.has(id)) this.pending.upserts.set(id, item);
      for (const id of batch.deleted) if (!this.pending.upserts.has(id)) this.pending.deleted.add(id);
      throw error;
    } finally {
      this.flushing = undefined;
    }
    items.forEach((item, row) => this.place(item.id, name, row));
    if (this.shouldCompact()) await this.compactNow();
  }

  /** Records where an item's committed row is, unless it changed while the row was being written. */
  private place(id: string, segment: string, row: number): void {
    if (this.metadata.has(id) && !this.pending.upserts.has(id)) this.rowOf.set(id, { segment, row });
  }

  /** Writes NNNNNN.stage2 (if the index stores stage-2 sides) and NNNNNN.seg; returns the segment's checksum. */
  private async writeSegmentFiles(name: string, items: UpsertItem[] | LazyItem[], deleted: string[]): Promise<string> {
    const dim = this.info.dim;
    const vectors = new Float32Array(items.length * dim);
    items.forEach((item, r) => vectors.set(item.vector, r * dim));
    const r = this.info.reranker;
    if (r?.regionSize && items.length > 0) {
      const rows = async function* () {
        for (const item of items) {
          const regions = typeof item.regions === 'function' ? await item.regions() : item.regions;
          if (!regions) throw createError('INDEX_CORRUPT', item.id, 'stage-2 regions missing');
          yield regions;
        }
      };
      await writeStage2(join(this.location, `${name}.stage2`), r.id, r.regionSize, items.length, rows());
      this.stage2.set(name, await Stage2Reader.open(join(this.location, `${name}.stage2`), r.id, r.regionSize, items.length));
    }
    return writeSegment(join(this.location, `${name}.seg`), {
      dim,
      deleted,
      items: items.map((i) => ({ id: i.id, metadata: i.metadata ?? {} })),
      vectors,
    });
  }

  private async commit(segments: Manifest['segments'], nextSegment: number): Promise<void> {
    const m: Manifest = { ...this.manifest!, segments, nextSegment, updatedAt: new Date().toISOString() };
    const lost = this.lock?.lost();
    if (lost) throw createError('INDEX_LOCKED', `${this.location} (this writer lost its lock: ${lost.message})`);
    await writeManifest(this.location, m);
    this.manifest = m;
  }

  private shouldCompact(): boolean {
    const segs = this.manifest!.segments;
    const stored = segs.reduce((a, s) => a + s.rows, 0);
    const dead = stored - this.index.size;
    return segs.length > this.compaction.maxSegments || (stored > 0 && dead / stored > this.compaction.maxDeadShare);
  }

  /** Rewrites the live rows as one segment, commits it, then deletes the old files. */
  async compact(): Promise<void> {
    this.assertWritable();
    if (!this.dir) return;
    await this.serial(async () => {
      await this.flushNow();
      await this.compactNow();
    });
  }

  private async compactNow(): Promise<void> {
    const m = this.manifest!;
    if (m.segments.length <= 1 && m.segments.every((s) => s.deleted === 0 && s.rows === this.index.size)) return;
    const name = segmentName(m.nextSegment);
    // a snapshot of the committed items: what changes meanwhile is pending for the next flush
    const ids = [...this.metadata.keys()].filter((id) => this.rowOf.has(id));
    const items = ids.map((id) => {
      const at = this.rowOf.get(id)!;
      return { id, metadata: this.metadata.get(id)!, vector: this.index.get(id)!, regions: async () => this.stage2.get(at.segment)?.read(at.row) };
    });
    const checksum = await this.writeSegmentFiles(name, items, []);
    const old = m.segments.map((s) => s.name);
    await this.commit([{ name, rows: items.length, deleted: 0, checksum }], m.nextSegment + 1);
    ids.forEach((id, row) => this.place(id, name, row));
    for (const s of old) {
      // readers that opened the old files keep their handles: unlinking does not cut them off
      await this.stage2.get(s)?.close();
      this.stage2.delete(s);
      await rm(join(this.location, `${s}.seg`), { force: true });
      await rm(join(this.location, `${s}.stage2`), { force: true });
    }
  }

  /** segments on disk (for tests and `duo index --json`) */
  get segments(): number {
    return this.manifest?.segments.length ?? 0;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    try {
      if (this.lock) await this.flush();
    } finally {
      this.closed = true;
      await this.closeFiles();
      await this.lock?.release();
    }
  }

  private async closeFiles(): Promise<void> {
    for (const r of this.stage2.values()) await r.close();
    this.stage2.clear();
    await this.index.dispose();
  }
}

interface Changes {
  upserts: Map<string, UpsertItem>;
  deleted: Set<string>;
}

interface Lock {
  release(): Promise<void>;
  /** set when another process took the lock over (ours went stale): this writer must not commit */
  lost(): Error | undefined;
}

async function takeLock(path: string, dir: string): Promise<Lock> {
  let lost: Error | undefined;
  try {
    // stale after 10 s without an update (refreshed every 2 s): a killed writer does not block the next run for long
    const release = await lockfile.lock(dir, {
      lockfilePath: join(dir, LOCK),
      stale: 10_000,
      update: 2_000,
      retries: 0,
      realpath: false,
      // the default throws from a timer and kills the process; the next commit refuses instead
      onCompromised: (error) => {
        lost = error;
      },
    });
    return { release: () => (lost ? Promise.resolve() : release()), lost: () => lost };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ELOCKED') throw createError('INDEX_LOCKED', path);
    throw error;
  }
}

/** A path that is a file: an index of format 1 (one file), or something else. */
async function refuseFile(path: string): Promise<never> {
  const handle = await open(path, 'r');
  const head = Buffer.alloc(8);
  try {
    await handle.read(head, 0, 8, 0);
  } finally {
    await handle.close();
  }
  if (head.toString('latin1') === 'DUOINDEX') {
    throw createError('INDEX_FORMAT', path, 'a format-1 index (one file, duo-search 0.1); indexes are folders now: convert it with `duo migrate <file> --index <new folder> [--reranker <dir>]`');
  }
  throw createError('INDEX_CORRUPT', path, 'not a duo index (an index is a folder with a manifest.json)');
}
