/**
 * The composition root: builds a store, an encoder and a cross-encoder from what an index
 * recorded, and hands them to a SearchEngine whose close() disposes exactly these. The CLI,
 * Predictor and the server all open engines here.
 */
import { createError } from '../errors.js';
import { openStore } from '../index/open-store.js';
import type { VectorStore } from '../index/vector-store.js';
import type { Encoder } from '../models/encoder.js';
import { loadEncoder, type LoadEncoderOptions } from '../models/load-encoder.js';
import { loadReranker } from '../models/load-reranker.js';
import type { CrossEncoder } from '../models/reranker.js';
import { SearchEngine, type EngineSettings } from './engine.js';
import { expansionTableFile, loadExpansionTable } from './expansion-table.js';

export interface OpenEngineOptions extends Pick<LoadEncoderOptions, 'allowRemote'> {
  /** an index folder */
  index: string;
  /** the model to query with; default: the one the index recorded (another must have the same weights) */
  model?: string;
  /** an encoder already loaded (the caller keeps owning it) */
  encoder?: Encoder;
  /**
   * stage 2: 'recorded' (default) loads the cross-encoder whose image side the index stores,
   * a folder loads that one, 'none' loads none (stage-1 search only, faster to open);
   * a cross-encoder already loaded is used as it is (the caller keeps owning it)
   */
  reranker?: 'recorded' | 'none' | string | CrossEncoder;
  cacheBytes?: EngineSettings['cacheBytes'];
}

export async function openEngine(o: OpenEngineOptions): Promise<SearchEngine> {
  const owned: { dispose?: () => Promise<void>; close?: () => Promise<void> }[] = [];
  const cleanUp = async () => {
    for (const part of owned.reverse()) await (part.close ?? part.dispose)!.call(part);
    owned.length = 0;
  };
  try {
    const store: VectorStore = await openStore(o.index);
    owned.push(store);
    const { info } = store;
    let encoder = o.encoder;
    if (!encoder) {
      encoder = await loadEncoder(o.model ?? info.modelSpec, { head: info.headSpec, allowRemote: o.allowRemote });
      owned.push(encoder);
    }
    if (encoder.id !== info.modelId) throw createError('INDEX_MODEL_MISMATCH', o.index, info.modelId, encoder.id);
    const which = o.reranker ?? 'recorded';
    let reranker = typeof which === 'object' ? which : undefined;
    if (typeof which === 'string' && which !== 'none') {
      const spec = which === 'recorded' ? info.reranker?.spec : which;
      if (spec) {
        reranker = await loadReranker(spec);
        owned.push(reranker);
      }
    }
    // the expansion table of the model the index recorded (its folder's), else the package's general one; read on first use
    const table = expansionTableFile(o.model ?? info.modelSpec);
    const expansions = () => (table ? loadExpansionTable(table) : undefined);
    return new SearchEngine({ store, encoder, reranker, expansions }, { cacheBytes: o.cacheBytes, onClose: cleanUp });
  } catch (error) {
    await cleanUp();
    throw error;
  }
}
