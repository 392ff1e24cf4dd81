/**
 * An index folder's table of contents (`manifest.json`), replaced atomically: it is the commit
 * point of every flush and compaction. Segment files it does not name are leftovers of a run
 * that died before committing, and the next writer deletes them.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic-write.js';
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

export interface Manifest {
  format: 'duo-index';
  formatVersion: number;
  info: StoreInfo;
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
  return m;
}

export const writeManifest = (dir: string, m: Manifest) => writeFileAtomic(join(dir, MANIFEST), `${JSON.stringify(m, null, 1)}\n`);
