/**
 * Text queries with the same options that arrive together (within one turn of the event loop)
 * go to the engine as one call: one encoder batch and one stage-1 scan for all of them instead
 * of one model call each; stage 2 still scores each query on its own (in the engine, one after
 * another). Each request keeps its own cancellation: one that is cancelled leaves the batch at
 * once, and the batch's work is cancelled only when all of its requests are.
 */
import type { EngineResponse, SearchEngine } from '../search/engine.js';
import type { SearchOptions } from '../search/options.js';

type Options = Omit<SearchOptions, 'alpha'> & { alpha?: number };

interface Entry {
  text: string;
  signal: AbortSignal;
  resolve: (r: EngineResponse) => void;
  reject: (e: unknown) => void;
}

interface Batch {
  engine: SearchEngine;
  options: Options;
  entries: Entry[];
}

export class QueryBatcher {
  private readonly open = new Map<string, Batch>();
  /** batches sent and queries in them, since the start */
  readonly stats = { batches: 0, queries: 0 };

  constructor(private readonly maxBatch = 32) {}

  search(engine: SearchEngine, text: string, options: Options, signal: AbortSignal): Promise<EngineResponse> {
    signal.throwIfAborted();
    const key = JSON.stringify(options);
    let batch = this.open.get(key);
    if (!batch || batch.engine !== engine) {
      batch = { engine, options, entries: [] };
      this.open.set(key, batch);
      const sending = batch;
      setImmediate(() => this.send(key, sending));
    }
    return new Promise<EngineResponse>((resolve, reject) => {
      batch.entries.push({ text, signal, resolve, reject });
      if (batch.entries.length >= this.maxBatch) this.send(key, batch);
    });
  }

  private send(key: string, batch: Batch): void {
    if (this.open.get(key) === batch) this.open.delete(key);
    const entries = batch.entries.splice(0).filter((e) => {
      if (!e.signal.aborted) return true;
      e.reject(e.signal.reason);
      return false;
    });
    if (entries.length === 0) return;
    this.stats.batches++;
    this.stats.queries += entries.length;
    const all = new AbortController();
    let live = entries.length;
    const leave: (() => void)[] = entries.map((e) => {
      const onAbort = () => {
        e.reject(e.signal.reason); // this request ends now; the others go on
        if (--live === 0) all.abort(e.signal.reason);
      };
      e.signal.addEventListener('abort', onAbort, { once: true });
      return () => e.signal.removeEventListener('abort', onAbort);
    });
    batch.engine
      .search(entries.map((e) => ({ text: e.text })), batch.options, { signal: all.signal })
      .then(
        (responses) => entries.forEach((e, i) => e.resolve(responses[i]!)),
        (error: unknown) => entries.forEach((e) => e.reject(error)),
      )
      .finally(() => leave.forEach((off) => off()));
  }
}
