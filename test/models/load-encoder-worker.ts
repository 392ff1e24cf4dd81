/**
 * Loads the model folder `workerData` in a worker thread and posts how it went: for tests of
 * damaged packs, whose load could loop forever in synchronous code that no timer in the test's
 * own thread can interrupt, while the worker can be terminated (loadInWorker in open-vocab.test.ts).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { DuoError } from '../../src/errors.js';
import { loadEncoder } from '../../src/models/load-encoder.js';

try {
  const encoder = await loadEncoder(workerData as string);
  await encoder.dispose();
  parentPort!.postMessage({ loaded: true });
} catch (error) {
  parentPort!.postMessage({ code: error instanceof DuoError ? error.code : undefined, message: (error as Error).message });
}
