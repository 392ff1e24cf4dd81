/**
 * One entry point for every backend, picked by the location (as lancedb's connect(uri)):
 * a path is an exact index folder; a postgres:// URL is a table in PostgreSQL with pgvector.
 */
import { createError } from '../errors.js';
import { ExactStore, type OpenOptions } from './exact-store.js';
import { isPgLocation } from './pg-location.js';
import { openPgStore } from './pg-store.js';
import type { VectorStore } from './vector-store.js';

export async function openStore(location: string, options: OpenOptions = {}): Promise<VectorStore> {
  if (isPgLocation(location)) return openPgStore(location, { write: options.write, create: options.create });
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(location)) {
    throw createError('BAD_ARGUMENT', '--index', `${location.split('://')[0]}:// stores are not available in this build; give an index folder or a postgres:// URL`);
  }
  return ExactStore.open(location, options);
}
