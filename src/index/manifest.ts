/**
 * An index folder's table of contents (`manifest.json`), replaced atomically: it is the commit
 * point of every flush and compaction. Segment files it does not name are leftovers of a run
 * that died before committing, and the next writer deletes them.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import type { HnswSettings } from './ann.js';
import type { StoreInfo } from './vector-store.js';

export const INDEX_FORMAT_VERSION = 2;
export const MANIFEST = 'manifest.json';

export interface SegmentRecord {
  /** file stem: NNNNNN.seg (and NNNNNN.stage2 when the index stores stage-2 sides) */
  name: string;
  rows: number;
  deleted: number;
  checksum: string;
}

/**
 * An HNSW graph saved beside the segments (hnsw-index.ts). Graph keys are never reused, so the
 * graph is brought up to date with the segments by removing its keys below `nextKey` that are no
 * longer live and adding the live ones from `nextKey` on; it is current as it stands while the
 * manifest's `nextSegment` is still `at` (compactions carry that forward).
 */
export interface GraphRecord {
  /** graph-NNNNNN.usearch */
  file: string;
  bytes: number;
  /** live items it holds */
  size: number;
  /** the next key when it was saved: every key below it that was live then is in the graph */
  nextKey: number;
  /** the manifest's nextSegment when the graph was last current */
  at: number;
}

/** An index with an HNSW scan; an index without it (the format before [6] included) is exact. */
export interface AnnRecord extends HnswSettings {
  /** keys are handed out from here and never reused (segment items record theirs) */
  nextKey: number;
  graph?: GraphRecord;
}

export interface Manifest {
  format: 'duo-index';
  formatVersion: number;
  info: StoreInfo;
  ann?: AnnRecord;
  segments: SegmentRecord[];
  nextSegment: number;
  createdAt: string;
  updatedAt: string;
}

export async function readManifest(dir: string): Promise<Manifest> {
  const path = join(dir, MANIFEST);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw createError('INDEX_CORRUPT', dir, `no ${MANIFEST}: not a duo index folder`);
    throw error;
  }
  let m: Manifest;
  try {
    m = JSON.parse(text) as Manifest;
  } catch {
    throw createError('INDEX_CORRUPT', path, 'not valid JSON');
  }
  if (m?.format !== 'duo-index') throw createError('INDEX_CORRUPT', path, 'not a duo index manifest');
  if (m.formatVersion !== INDEX_FORMAT_VERSION) throw createError('INDEX_FORMAT', dir, `format version ${m.formatVersion}, this build reads ${INDEX_FORMAT_VERSION}: rebuild it with duo index`);
  const shapeOk = Array.isArray(m.segments) && m.segments.every((s) => typeof s?.name === 'string' && typeof s.checksum === 'string') && Number.isInteger(m.info?.dim) && typeof m.info.modelId === 'string' && Number.isInteger(m.nextSegment);
  if (!shapeOk) throw createError('INDEX_CORRUPT', path, 'fields missing or of the wrong type');
  const a = m.ann;
  const annOk = a === undefined || (a.kind === 'hnsw' && Number.isInteger(a.nextKey) && Number.isInteger(a.connectivity) && (a.graph === undefined || (typeof a.graph.file === 'string' && /^graph-\d{6}\.usearch$/.test(a.graph.file) && Number.isInteger(a.graph.nextKey))));
  if (!annOk) throw createError('INDEX_CORRUPT', path, 'ann: fields missing or of the wrong type');
  return m;
}

export const writeManifest = (dir: string, m: Manifest) => writeFileAtomic(join(dir, MANIFEST), `${JSON.stringify(m, null, 1)}\n`);
