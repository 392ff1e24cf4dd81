/**
 * `duo import`: vectors embedded elsewhere (`duo embed` shards, or any float32 .npy with a
 * list of ids) into an index, a block of rows at a time, so a million-row file never has to
 * fit in memory twice. The vectors' dimension must be the model's.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { NpyReader } from '../data/npy.js';
import { createError } from '../errors.js';
import type { Metadata } from './filter.js';
import type { ShardManifest } from './embed-shard.js';
import type { VectorStore } from './vector-store.js';

export interface VectorFiles {
  vectors: string;
  ids: string;
  /** one {"id", "metadata"} per line, in the same order (optional) */
  metadata?: string;
}

const lines = async (path: string) => {
  if (!existsSync(path)) throw createError('FILE_NOT_FOUND', path);
  const text = await readFile(path, 'utf8');
  return text.endsWith('\n') ? text.slice(0, -1).split('\n') : text.split('\n');
};

/** The shard files of a `duo embed` output folder, with what they were embedded with. */
export async function embedOutput(dir: string): Promise<{ manifest: ShardManifest; files: VectorFiles }[]> {
  if (!existsSync(dir)) throw createError('FILE_NOT_FOUND', dir);
  const names = (await readdir(dir)).filter((f) => f.endsWith('.json')).sort();
  const out = [];
  for (const f of names) {
    const manifest = JSON.parse(await readFile(join(dir, f), 'utf8')) as ShardManifest;
    if (manifest.format !== 'duo-embeddings') continue;
    const stem = join(dir, f.slice(0, -'.json'.length));
    out.push({ manifest, files: { vectors: `${stem}.npy`, ids: `${stem}.ids.txt`, metadata: `${stem}.meta.jsonl` } });
  }
  if (out.length === 0) throw createError('DATASET_FORMAT', dir, 'no duo embed output here (no <shard>.json)');
  const first = out[0]!.manifest;
  const odd = out.find((s) => s.manifest.modelId !== first.modelId || s.manifest.root !== first.root);
  if (odd) throw createError('BAD_ARGUMENT', dir, `its shards come from different models or folders (${first.modelId} of ${first.root}, ${odd.manifest.modelId} of ${odd.manifest.root})`);
  return out;
}

/** Checks a vector file against the store's dimension and its id list, then upserts it in blocks. */
export async function importVectors(store: VectorStore, files: VectorFiles, o: { blockRows?: number; onProgress?: (done: number, total: number) => void } = {}): Promise<number> {
  const reader = await NpyReader.open(files.vectors);
  try {
    if (reader.dim !== store.info.dim) throw createError('INDEX_DIM_MISMATCH', `${files.vectors} (for model ${store.info.modelId})`, store.info.dim, reader.dim);
    const ids = await lines(files.ids);
    if (ids.length !== reader.rows) throw createError('DATASET_FORMAT', files.ids, `${ids.length} ids for ${reader.rows} rows of ${files.vectors}`);
    if (new Set(ids).size !== ids.length) throw createError('DATASET_FORMAT', files.ids, 'an id appears twice');
    let metadata: Metadata[] | undefined;
    if (files.metadata && existsSync(files.metadata)) {
      const rows = (await lines(files.metadata)).map((l, i) => {
        try {
          return JSON.parse(l) as { id: string; metadata?: Metadata };
        } catch {
          throw createError('DATASET_FORMAT', files.metadata!, `line ${i + 1} is not JSON`);
        }
      });
      const wrong = rows.findIndex((r, i) => r.id !== ids[i]);
      if (rows.length !== ids.length || wrong >= 0) throw createError('DATASET_FORMAT', files.metadata, `line ${wrong + 1} does not describe id ${ids[wrong] ?? '(none)'} of ${files.ids}`);
      metadata = rows.map((r) => r.metadata ?? {});
    }
    const block = o.blockRows ?? 4096;
    for (let from = 0; from < reader.rows; from += block) {
      const rows = await reader.read(from, block);
      const n = rows.length / reader.dim;
      await store.upsert(Array.from({ length: n }, (_, i) => ({ id: ids[from + i]!, vector: rows.subarray(i * reader.dim, (i + 1) * reader.dim), metadata: metadata?.[from + i] })));
      // a checkpoint every 16 blocks: a killed import keeps what it had flushed
      if ((from / block) % 16 === 15) await store.flush();
      o.onProgress?.(from + n, reader.rows);
    }
    await store.flush();
    return reader.rows;
  } finally {
    await reader.close();
  }
}
