/**
 * Where a model's files come from: a local directory (remote loading off) or a Hugging Face
 * model id (downloaded once into the cache, then read offline). A missing local file or an
 * unreachable hub becomes one clear error naming the place and what is missing.
 */
import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { basename, isAbsolute, join, resolve } from 'node:path';
import { createError } from '../errors.js';

export interface ModelSource {
  kind: 'local' | 'hub';
  /** absolute directory for local models, the hub id otherwise */
  location: string;
  /** what transformers.js `from_pretrained` is given */
  pretrainedPath: string;
  allowRemote: boolean;
}

export function looksLikePath(spec: string): boolean {
  return isAbsolute(spec) || spec.startsWith('.') || spec.startsWith('~') || existsSync(spec);
}

export function resolveModelSource(spec: string, options: { allowRemote?: boolean } = {}): ModelSource {
  if (looksLikePath(spec)) {
    const dir = resolve(spec.replace(/^~(?=\/|$)/, process.env.HOME ?? '~'));
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw createError('MODEL_NOT_FOUND', dir, 'the directory itself');
    return { kind: 'local', location: dir, pretrainedPath: dir, allowRemote: false };
  }
  return { kind: 'hub', location: spec, pretrainedPath: spec, allowRemote: options.allowRemote ?? true };
}

/** Throws MODEL_NOT_FOUND listing every required file absent from a local model directory. */
export function requireFiles(source: ModelSource, files: string[]): void {
  if (source.kind !== 'local') return;
  const missing = files.filter((f) => !existsSync(join(source.location, f)));
  if (missing.length > 0) throw createError('MODEL_NOT_FOUND', source.location, missing.join(', '));
}

export async function readJsonIfPresent<T>(source: ModelSource, file: string): Promise<T | undefined> {
  if (source.kind !== 'local') return undefined;
  const path = join(source.location, file);
  if (!existsSync(path)) return undefined;
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch (error) {
    throw createError('MODEL_UNSUPPORTED', path, `invalid JSON (${(error as Error).message})`);
  }
}

/**
 * A content id for local weights, so an index keeps working when the model directory moves
 * and refuses weights that changed: name@sha256(size + first and last MiB of each file).
 */
export async function contentId(source: ModelSource, files: string[]): Promise<string> {
  if (source.kind === 'hub') return source.location;
  const hash = createHash('sha256');
  for (const f of files) {
    const path = join(source.location, f);
    if (!existsSync(path)) continue;
    const handle = await open(path, 'r');
    try {
      const { size } = await handle.stat();
      hash.update(`${f}:${size};`);
      const chunk = Buffer.alloc(Math.min(size, 1 << 20));
      await handle.read(chunk, 0, chunk.length, 0);
      hash.update(chunk);
      if (size > chunk.length) {
        await handle.read(chunk, 0, chunk.length, size - chunk.length);
        hash.update(chunk);
      }
    } finally {
      await handle.close();
    }
  }
  return `${basename(source.location)}@${hash.digest('hex').slice(0, 12)}`;
}

/** Turns transformers.js's loading failures into an error that says where and what. */
export function explainLoadFailure(source: ModelSource, error: unknown): Error {
  const message = error instanceof Error ? error.message : String(error);
  if (source.kind === 'hub' && !source.allowRemote) {
    return createError('MODEL_NOT_FOUND', `${source.location} (remote loading off, cache only)`, message);
  }
  if (source.kind === 'hub') {
    return createError('MODEL_NOT_FOUND', `${source.location} (Hugging Face hub or its local cache)`, message);
  }
  return createError('MODEL_UNSUPPORTED', source.location, message);
}

/** A file or folder name inside a model folder, as a manifest names one: no separator, no leading dot (so never `..`): nothing outside the folder is read, copied or removed. */
export const isPackEntry = (name: unknown): name is string => typeof name === 'string' && /^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/.test(name);
