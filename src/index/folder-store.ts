/**
 * The index-folder store: append-only segments under a manifest (manifest.ts, segment-file.ts),
 * searched by the scan the manifest records (ann.ts): exact (ExactIndex, every vector in
 * memory) or HNSW (hnsw-index.ts, a usearch graph loaded or memory-mapped, the f32 rows left
 * in the segment files and read when needed).
 *
 *   photos.duo/manifest.json          what the index holds, which segments and which graph make it
 *   photos.duo/000001.seg             vectors, ids, metadata (and graph keys), deletions of one flush
 *   photos.duo/000001.stage2          the cross-encoder's image side of the same rows (fp16)
 *   photos.duo/graph-000004.usearch   the HNSW graph as of the commit that named it (HNSW indexes)
 *   photos.duo/write.lock             held by the one process that may write (proper-lockfile)
 *   photos.duo/write.lock.owner       its pid and host: a rerun takes over at once from a killed writer
 *
 * A flush appends one segment and commits it by replacing the manifest; a killed writer leaves
 * at most uncommitted files, deleted by the next writer. When segments pile up or a quarter of
 * the stored rows are dead, a flush compacts them into one. Stage-2 rows stay on disk: a query
 * reads only its candidates' rows.
 *
 * The graph is written only at a flush with nothing pending, so it holds exactly what the
 * segments of that commit hold; it goes to a new file that the same manifest commit names, and
 * the file it replaces is deleted after. It is written when half its items changed since the
 * last one, and when the writer closes; a graph older than the segments (the writer was killed)
 * is brought up to date on open from the segments, and one that is missing or does not match
 * them is rebuilt from their rows.
 */
import { existsSync, statSync } from 'node:fs';
import { mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createError, DuoError } from '../errors.js';
import { l2normalize } from '../models/encoder.js';
import { checkHnswSettings, EXACT, needsRebuild, resolveAnn, type AnnRequest, type AnnSettings, type HnswSettings } from './ann.js';
import { checkVectors, ExactIndex, type ScanBackend } from './exact-index.js';
import { isEmptyFilter, matches, type Filter, type Metadata } from './filter.js';
import { HnswIndex, type GraphState, type SearchPlans } from './hnsw-index.js';
import { INDEX_FORMAT_VERSION, MANIFEST, readManifest, writeManifest, type GraphRecord, type Manifest } from './manifest.js';
import { readSegment, segmentName, SegmentRows, Stage2Reader, writeSegment, writeStage2 } from './segment-file.js';
import { refuseFile, takeLock, type Lock } from './store-lock.js';
import type { Hit, StoredItem, StoreInfo, StoreSearchOptions, UpsertItem, VectorStore } from './vector-store.js';

export interface CompactionPolicy {
  /** compact when more segments than this */
  maxSegments: number;
  /** compact when more than this share of stored rows is dead (replaced or removed) */
  maxDeadShare: number;
}

export const DEFAULT_COMPACTION: CompactionPolicy = { maxSegments: 16, maxDeadShare: 0.25 };

/** an item being compacted: its stage-2 row is read from the old segment only when written */
type LazyItem = { id: string; metadata: Metadata; key?: number; regions: () => Promise<Float32Array | undefined> };
/** a change waiting for a flush: the vector L2-normalised, and its graph key in HNSW indexes */
type PendingItem = UpsertItem & { key?: number };
const SEGMENT_FILE = /^\d{6}\.(seg|stage2)$/;
const GRAPH_FILE = /^graph-\d{6}\.usearch$/;
/** write-file-atomic's temporaries (`<file>.<hash>`) and the streamed ones (`.<file>.<pid>.<time>.tmp`) */
const TEMPORARY_FILE = /^((\d{6}\.(seg|stage2)|manifest\.json)\.[0-9a-f]+|\..+\.tmp)$/;
/** rows this close together in a segment are read in one call */
const READ_GAP = 8;

export interface OpenOptions {
  /** take the write lock (one writer per index across processes) */
  write?: boolean;
  /** create the index with this identity when the folder does not exist yet */
  create?: StoreInfo;
  compaction?: CompactionPolicy;
  /** which exact scan answers searches (default: chosen by the amount of work) */
  scan?: ScanBackend;
  /**
   * Exact or HNSW: what `--ann` asks (ann.ts, storeOptionsFor), or settings to use as given.
   * A writer converts the index on its next flush; a reader takes only the search expansion.
   */
  ann?: AnnRequest | AnnSettings;
}

/** What the scan is and how its graph was opened (`duo index --json`, tests, the benchmark). */
export interface ScanInfo {
  settings: AnnSettings;
  graph?: { state: GraphState; mapped: boolean; plans: SearchPlans; problem?: string };
}

const recordedAnn = (m: Manifest): AnnSettings =>
  m.ann ? { kind: 'hnsw', quantization: m.ann.quantization, connectivity: m.ann.connectivity, expansionAdd: m.ann.expansionAdd, expansionSearch: m.ann.expansionSearch } : EXACT;

const sameAnn = (a: AnnSettings, b: AnnSettings): boolean =>
  a.kind === 'exact' || b.kind === 'exact'
    ? a.kind === b.kind
    : a.quantization === b.quantization && a.connectivity === b.connectivity && a.expansionAdd === b.expansionAdd && a.expansionSearch === b.expansionSearch;

function settingsFor(asked: OpenOptions['ann'], recorded: AnnSettings | undefined, held: number, dim: number): AnnSettings {
  const s = asked && 'kind' in asked ? asked : resolveAnn(asked, recorded, held, dim);
  return s.kind === 'hnsw' ? checkHnswSettings({ ...s }) : EXACT;
}

/** A reader keeps what the index recorded; it may search with another expansion. */
function readerSettings(recorded: AnnSettings, asked: OpenOptions['ann']): AnnSettings {
  const ef = asked && ('kind' in asked ? (asked.kind === 'hnsw' ? asked.expansionSearch : undefined) : asked.annExpansion);
  return recorded.kind === 'hnsw' && ef !== undefined ? checkHnswSettings({ ...recorded, expansionSearch: ef }) : recorded;
}

export class FolderStore implements VectorStore {
  private exact?: ExactIndex;
  private hnsw?: HnswIndex;
  private readonly metadata = new Map<string, Metadata>();
  /** where each live item's committed row is on disk */
  private readonly rowOf = new Map<string, { segment: string; row: number }>();
  private readonly stage2 = new Map<string, Stage2Reader>();
  /** HNSW indexes: open segments, their f32 rows read on demand */
  private readonly rowFiles = new Map<string, SegmentRows>();
  /** changes since the last flush (the in-memory store keeps everything here) */
  private pending: Changes = { upserts: new Map(), deleted: new Set() };
  /** the changes a flush is writing: still read from here until they are committed */
  private flushing?: Changes;
  /** flushes and compactions run one at a time */
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  /** the final flush: the graph is written if it changed at all */
  private closing = false;
  /** the manifest's scan settings differ from `ann`: the next flush commits them */
  private annChanged = false;
  /** some items have graph keys no segment records yet (a conversion to HNSW): the next flush compacts */
  private rewriteAll = false;

  private constructor(
    readonly location: string,
    readonly info: StoreInfo,
    private manifest: Manifest | undefined,
    private readonly lock: Lock | undefined,
    private readonly compaction: CompactionPolicy,
    /** the scan in use (what the next commit records) */
    readonly ann: AnnSettings,
    private readonly scanBackend: ScanBackend = 'auto',
  ) {}

  /** A store that lives in memory only (evaluation, ranking a list of images). */
  static memory(info: StoreInfo, options: Pick<OpenOptions, 'scan'> & { ann?: AnnSettings } = {}): FolderStore {
    const store = new FolderStore('<memory>', info, undefined, undefined, DEFAULT_COMPACTION, settingsFor(options.ann ?? EXACT, undefined, 0, info.dim), options.scan);
    store.makeScan();
    return store;
  }

  /** Opens an index folder (read-only unless `write`); `create` makes it when it does not exist. */
  static async open(path: string, options: OpenOptions = {}): Promise<FolderStore> {
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
          const ann = settingsFor(options.ann, undefined, 0, options.create!.dim);
          manifest = { format: 'duo-index', formatVersion: INDEX_FORMAT_VERSION, info: options.create!, segments: [], nextSegment: 1, createdAt: now, updatedAt: now };
          if (ann.kind === 'hnsw') manifest.ann = { ...ann, nextKey: 0 };
          await writeManifest(dir, manifest);
        }
        const recorded = recordedAnn(manifest);
        const held = manifest.segments.reduce((a, s) => a + s.rows - s.deleted, 0);
        const ann = lock ? settingsFor(options.ann, recorded, held, manifest.info.dim) : readerSettings(recorded, options.ann);
        const store = new FolderStore(dir, manifest.info, manifest, lock, options.compaction ?? DEFAULT_COMPACTION, ann, options.scan);
        if (lock) await store.removeLeftovers();
        try {
          await store.load(recorded);
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

  private makeScan(): void {
    if (this.ann.kind === 'hnsw') this.hnsw = new HnswIndex(this.info.dim, this.ann, (ids) => this.readRows(ids), this.manifest?.ann?.nextKey ?? 0);
    else {
      this.exact = new ExactIndex(this.info.dim);
      this.exact.backend = this.scanBackend;
    }
  }

  private async load(recorded: AnnSettings): Promise<void> {
    this.makeScan();
    this.annChanged = !sameAnn(recorded, this.ann);
    if (this.exact) await this.loadExact();
    else await this.loadHnsw(recorded);
  }

  private async loadExact(): Promise<void> {
    for (const seg of this.manifest!.segments) {
      const data = await readSegment(join(this.location, `${seg.name}.seg`), seg.checksum);
      if (data.dim !== this.info.dim) throw createError('INDEX_DIM_MISMATCH', join(this.location, `${seg.name}.seg`), this.info.dim, data.dim);
      this.forget(data.deleted);
      const ids = data.items.map((i) => i.id);
      const vectors = ids.map((_, r) => data.vectors.subarray(r * data.dim, (r + 1) * data.dim));
      this.exact!.upsert(ids, vectors);
      data.items.forEach((item, row) => this.holdRow(item.id, item.metadata, seg.name, row));
      await this.openStage2(seg.name, data.items.length);
    }
  }

  /** Reads the segments' headers (ids, metadata, keys; a writer also verifies their checksums), then opens the graph. */
  private async loadHnsw(recorded: AnnSettings): Promise<void> {
    const h = this.hnsw!;
    const m = this.manifest!;
    const keyless = new Set<string>();
    for (const seg of m.segments) {
      const path = join(this.location, `${seg.name}.seg`);
      const rows = await SegmentRows.open(path, seg.checksum, { verify: this.lock !== undefined });
      this.rowFiles.set(seg.name, rows);
      if (rows.dim !== this.info.dim) throw createError('INDEX_DIM_MISMATCH', path, this.info.dim, rows.dim);
      // the graph is not open yet: deletions only leave the key map
      for (const id of rows.deleted) {
        this.metadata.delete(id);
        this.rowOf.delete(id);
        h.untrack(id);
      }
      rows.items.forEach((item, row) => {
        this.holdRow(item.id, item.metadata, seg.name, row);
        if (item.key === undefined) {
          h.untrack(item.id);
          keyless.add(item.id);
        } else {
          h.track(item.id, item.key);
          keyless.delete(item.id);
        }
      });
      await this.openStage2(seg.name, rows.items.length);
    }
    // items an exact index wrote: fresh keys, recorded in the segments by the next flush's compaction
    for (const id of keyless) if (this.metadata.has(id)) h.track(id, h.nextKey);
    if (keyless.size > 0) this.rewriteAll = true;
    const graph = m.ann?.graph && !needsRebuild(recorded, this.ann) ? m.ann.graph : undefined;
    const path = graph && join(this.location, graph.file);
    let bytes = path && existsSync(path) ? statSync(path).size : undefined;
    if (path && bytes === undefined && !this.lock) {
      // a writer may have replaced the graph since this reader read the manifest
      const now = await readManifest(this.location);
      if (now.ann?.graph?.file !== graph.file) throw createError('INDEX_CORRUPT', path, 'graph file missing');
      bytes = undefined;
    }
    h.restore(path, graph && { bytes: graph.bytes, nextKey: graph.nextKey, current: graph.at === m.nextSegment && keyless.size === 0 }, bytes);
  }

  private holdRow(id: string, metadata: Metadata, segment: string, row: number): void {
    this.metadata.set(id, metadata);
    this.rowOf.set(id, { segment, row });
  }

  private async openStage2(segment: string, rows: number): Promise<void> {
    const r = this.info.reranker;
    if (r?.regionSize && rows > 0) this.stage2.set(segment, await Stage2Reader.open(join(this.location, `${segment}.stage2`), r.id, r.regionSize, rows));
  }

  private forget(ids: Iterable<string>): number {
    const list = [...ids];
    for (const id of list) {
      this.metadata.delete(id);
      this.rowOf.delete(id);
    }
    return this.exact ? this.exact.remove(list) : this.hnsw!.remove(list);
  }

  /**
   * Exact rows (normalised) of these ids, in order: pending changes from memory, committed rows
   * from the segment files, rows close together read in one call.
   */
  private readRows(ids: string[]): Float32Array {
    const dim = this.info.dim;
    const out = new Float32Array(ids.length * dim);
    const disk: { segment: string; row: number; at: number }[] = [];
    ids.forEach((id, i) => {
      const p = this.pending.upserts.get(id) ?? this.flushing?.upserts.get(id);
      if (p) return out.set(p.vector, i * dim);
      const at = this.rowOf.get(id);
      if (!at) throw createError('INDEX_CORRUPT', this.location, `no stored row for ${id}`);
      disk.push({ ...at, at: i });
    });
    disk.sort((a, b) => (a.segment < b.segment ? -1 : a.segment > b.segment ? 1 : a.row - b.row));
    let scratch = new Float32Array(0);
    for (let s = 0; s < disk.length; ) {
      let e = s + 1;
      while (e < disk.length && disk[e]!.segment === disk[s]!.segment && disk[e]!.row - disk[e - 1]!.row <= READ_GAP) e++;
      const file = this.rowFiles.get(disk[s]!.segment);
      if (!file) throw createError('INDEX_CORRUPT', this.location, `segment ${disk[s]!.segment} is not open`);
      const first = disk[s]!.row;
      const count = disk[e - 1]!.row - first + 1;
      if (count === 1) file.readInto(first, 1, out, disk[s]!.at * dim);
      else {
        if (scratch.length < count * dim) scratch = new Float32Array(count * dim);
        file.readInto(first, count, scratch, 0);
        for (let j = s; j < e; j++) out.set(scratch.subarray((disk[j]!.row - first) * dim, (disk[j]!.row - first + 1) * dim), disk[j]!.at * dim);
      }
      s = e;
    }
    return out;
  }

  /** Files of a writer that died before committing them: uncommitted segments and graphs, temporary files. */
  private async removeLeftovers(): Promise<void> {
    const m = this.manifest!;
    const named = new Set(m.segments.flatMap((s) => [`${s.name}.seg`, `${s.name}.stage2`]));
    if (m.ann?.graph) named.add(m.ann.graph.file);
    for (const f of await readdir(this.location)) {
      if (((SEGMENT_FILE.test(f) || GRAPH_FILE.test(f)) && !named.has(f)) || TEMPORARY_FILE.test(f)) await rm(join(this.location, f), { force: true });
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

  private get size(): number {
    return this.exact ? this.exact.size : this.hnsw!.size;
  }

  async count(filter?: Filter): Promise<number> {
    this.assertOpen();
    if (isEmptyFilter(filter)) return this.size;
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
    const ids = items.map((i) => i.id);
    // validates dimensions and finiteness before anything is recorded
    checkVectors(ids, items.map((i) => i.vector), this.info.dim);
    let vectors: Float32Array[];
    let keys: (number | undefined)[] = [];
    if (this.exact) {
      this.exact.upsert(ids, items.map((i) => i.vector));
      vectors = ids.map((id) => this.exact!.get(id)!);
    } else {
      vectors = items.map((i) => l2normalize(Float32Array.from(i.vector)));
      keys = this.hnsw!.upsert(ids, vectors);
    }
    items.forEach((item, i) => {
      this.metadata.set(item.id, item.metadata ?? {});
      this.rowOf.delete(item.id);
      this.pending.upserts.set(item.id, { ...item, vector: vectors[i]!, metadata: item.metadata ?? {}, key: keys[i] });
    });
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
    if (this.exact) {
      return ids.map((id) => {
        const vector = this.exact!.get(id);
        return vector ? { id, vector, metadata: this.metadata.get(id) ?? {} } : undefined;
      });
    }
    const held = ids.filter((id) => this.hnsw!.has(id));
    const rows = this.readRows(held);
    const at = new Map(held.map((id, i) => [id, i]));
    return ids.map((id) => {
      const i = at.get(id);
      return i === undefined ? undefined : { id, vector: rows.slice(i * this.info.dim, (i + 1) * this.info.dim), metadata: this.metadata.get(id) ?? {} };
    });
  }

  async metadataOf(ids: string[]): Promise<(Metadata | undefined)[]> {
    this.assertOpen();
    // held as get() decides it, from the in-memory id maps: no segment row is read
    const held = (id: string) => (this.exact ? this.exact.has(id) : this.hnsw!.has(id));
    return ids.map((id) => (held(id) ? (this.metadata.get(id) ?? {}) : undefined));
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
    return this.exact ? this.exact.search(queries, k, keep) : this.hnsw!.search(queries, k, keep);
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
    const hasBatch = batch.upserts.size > 0 || batch.deleted.size > 0;
    if (!hasBatch && !this.annChanged && !this.rewriteAll && !this.hnsw?.saveDue(this.closing)) return;
    const m = this.manifest!;
    const name = segmentName(m.nextSegment);
    let segments = m.segments;
    const items = [...batch.upserts.values()];
    let graph: SavedGraph | undefined;
    if (hasBatch) {
      // changes made while this flush writes go to a fresh pending set, for the next flush
      this.pending = { upserts: new Map(), deleted: new Set() };
      this.flushing = batch;
    }
    try {
      if (hasBatch) {
        const checksum = await this.writeSegmentFiles(name, items, [...batch.deleted], vectorsOf(items, this.info.dim));
        segments = [...segments, { name, rows: items.length, deleted: batch.deleted.size, checksum }];
      }
      // with keys still to be written into the segments, the compaction below saves the graph
      graph = this.rewriteAll ? undefined : await this.saveGraph(name, m.nextSegment + 1);
      await this.commit(segments, hasBatch || graph ? m.nextSegment + 1 : m.nextSegment, graph?.record);
    } catch (error) {
      if (graph) await rm(join(this.location, graph.record.file), { force: true });
      // nothing was committed: the batch goes back under anything newer
      for (const [id, item] of batch.upserts) if (!this.pending.upserts.has(id) && !this.pending.deleted.has(id)) this.pending.upserts.set(id, item);
      for (const id of batch.deleted) if (!this.pending.upserts.has(id)) this.pending.deleted.add(id);
      throw error;
    } finally {
      this.flushing = undefined;
    }
    graph?.saved();
    items.forEach((item, row) => this.place(item.id, name, row));
    if (this.shouldCompact() || this.rewriteAll) await this.compactNow();
  }

  /** Records where an item's committed row is, unless it changed while the row was being written. */
  private place(id: string, segment: string, row: number): void {
    if (this.metadata.has(id) && !this.pending.upserts.has(id)) this.rowOf.set(id, { segment, row });
  }

  /** Writes NNNNNN.stage2 (if the index stores stage-2 sides) and NNNNNN.seg; returns the segment's checksum. */
  private async writeSegmentFiles(name: string, items: PendingItem[] | LazyItem[], deleted: string[], vectors: Float32Array): Promise<string> {
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
      await this.stage2.get(name)?.close();
      this.stage2.set(name, await Stage2Reader.open(join(this.location, `${name}.stage2`), r.id, r.regionSize, items.length));
    }
    const path = join(this.location, `${name}.seg`);
    const keyed = this.hnsw !== undefined;
    const checksum = await writeSegment(path, {
      dim: this.info.dim,
      deleted,
      items: items.map((i) => (keyed ? { id: i.id, metadata: i.metadata ?? {}, key: i.key } : { id: i.id, metadata: i.metadata ?? {} })),
      vectors,
    });
    if (keyed) {
      await this.rowFiles.get(name)?.close();
      this.rowFiles.set(name, await SegmentRows.open(path, checksum));
    }
    return checksum;
  }

  /**
   * Writes the graph as graph-<name>.usearch when it is due and nothing is pending (so it holds
   * exactly what the segments of the coming commit hold); the caller commits the record.
   */
  private async saveGraph(name: string, at: number): Promise<SavedGraph | undefined> {
    const h = this.hnsw;
    if (!h || !h.saveDue(this.closing)) return undefined;
    if (this.pending.upserts.size > 0 || this.pending.deleted.size > 0) return undefined;
    const file = `graph-${name}.usearch`;
    const path = join(this.location, file);
    const tmp = join(this.location, `.${file}.${process.pid}.${Date.now()}.tmp`);
    try {
      const s = h.save(tmp); // synchronous: nothing changes between the check above and this snapshot
      const handle = await open(tmp, 'r+');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(tmp, path);
      return { record: { file, bytes: statSync(path).size, size: s.size, nextKey: s.nextKey, at }, saved: s.saved };
    } catch (error) {
      await rm(tmp, { force: true });
      throw error;
    }
  }

  private async commit(segments: Manifest['segments'], nextSegment: number, graph?: GraphRecord): Promise<void> {
    const prev = this.manifest!;
    const m: Manifest = { ...prev, ann: this.annRecord(prev, graph), segments, nextSegment, updatedAt: new Date().toISOString() };
    const lost = this.lock?.lost();
    if (lost) throw createError('INDEX_LOCKED', `${this.location} (this writer lost its lock: ${lost.message})`);
    await writeManifest(this.location, m);
    this.manifest = m;
    this.annChanged = false;
    const old = prev.ann?.graph?.file;
    if (old && old !== m.ann?.graph?.file) await rm(join(this.location, old), { force: true });
  }

  /** The scan the next manifest records: the new graph, or the one it had while it still fits the settings. */
  private annRecord(prev: Manifest, graph: GraphRecord | undefined): Manifest['ann'] {
    if (this.ann.kind !== 'hnsw') return undefined;
    const kept = prev.ann?.graph && !needsRebuild(recordedAnn(prev), this.ann) ? prev.ann.graph : undefined;
    const { kind, quantization, connectivity, expansionAdd, expansionSearch }: HnswSettings = this.ann;
    return { kind, quantization, connectivity, expansionAdd, expansionSearch, nextKey: this.hnsw!.nextKey, graph: graph ?? kept };
  }

  private shouldCompact(): boolean {
    const segs = this.manifest!.segments;
    const stored = segs.reduce((a, s) => a + s.rows, 0);
    const dead = stored - this.size;
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
    if (m.segments.length === 0) this.rewriteAll = false;
    if (!this.rewriteAll && m.segments.length <= 1 && m.segments.every((s) => s.deleted === 0 && s.rows === this.size)) return;
    const name = segmentName(m.nextSegment);
    // a snapshot of the committed items: what changes meanwhile is pending for the next flush
    const ids = [...this.metadata.keys()].filter((id) => this.rowOf.has(id));
    const dim = this.info.dim;
    let vectors: Float32Array;
    if (this.exact) {
      vectors = new Float32Array(ids.length * dim);
      ids.forEach((id, r) => vectors.set(this.exact!.get(id)!, r * dim));
    } else vectors = this.readRows(ids);
    const items: LazyItem[] = ids.map((id) => {
      const at = this.rowOf.get(id)!;
      return { id, metadata: this.metadata.get(id)!, key: this.hnsw?.key(id), regions: async () => this.stage2.get(at.segment)?.read(at.row) };
    });
    const checksum = await this.writeSegmentFiles(name, items, [], vectors);
    // a compaction changes no item: a graph that was current stays current
    const was = m.ann?.graph;
    const carried = was && was.at === m.nextSegment && !this.rewriteAll && !needsRebuild(recordedAnn(m), this.ann) ? { ...was, at: m.nextSegment + 1 } : undefined;
    const graph = carried ? undefined : await this.saveGraph(name, m.nextSegment + 1);
    const old = m.segments.map((s) => s.name);
    try {
      await this.commit([{ name, rows: items.length, deleted: 0, checksum }], m.nextSegment + 1, carried ?? graph?.record);
    } catch (error) {
      if (graph) await rm(join(this.location, graph.record.file), { force: true });
      throw error;
    }
    graph?.saved();
    this.rewriteAll = false;
    ids.forEach((id, row) => this.place(id, name, row));
    for (const s of old) {
      // readers that opened the old files keep their handles: unlinking does not cut them off
      await this.stage2.get(s)?.close();
      this.stage2.delete(s);
      await this.rowFiles.get(s)?.close();
      this.rowFiles.delete(s);
      await rm(join(this.location, `${s}.seg`), { force: true });
      await rm(join(this.location, `${s}.stage2`), { force: true });
    }
  }

  /** segments on disk (for tests and `duo index --json`) */
  get segments(): number {
    return this.manifest?.segments.length ?? 0;
  }

  scanInfo(): ScanInfo {
    const h = this.hnsw;
    return { settings: this.ann, graph: h && { state: h.state, mapped: h.mapped, plans: { ...h.plans }, problem: h.problem } };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    try {
      if (this.lock) {
        this.closing = true;
        await this.flush();
      }
    } finally {
      this.closed = true;
      await this.closeFiles();
      await this.lock?.release();
    }
  }

  private async closeFiles(): Promise<void> {
    for (const r of this.stage2.values()) await r.close();
    this.stage2.clear();
    for (const r of this.rowFiles.values()) await r.close();
    this.rowFiles.clear();
    await this.exact?.dispose();
    await this.hnsw?.dispose();
  }
}

interface Changes {
  upserts: Map<string, PendingItem>;
  deleted: Set<string>;
}

interface SavedGraph {
  record: GraphRecord;
  /** called once a manifest names the file */
  saved: () => void;
}

function vectorsOf(items: PendingItem[], dim: number): Float32Array {
  const out = new Float32Array(items.length * dim);
  items.forEach((item, r) => out.set(item.vector, r * dim));
  return out;
}
