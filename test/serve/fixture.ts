/**
 * A small collection for the server's tests: the colour images in two folders, indexed with the
 * colour CLIP fixture and its BLIP cross-encoder recorded (stage-2 sides stored), plus a caption
 * index; engines opened through openEngine as `duo serve` does.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readCaptionFile } from '../../src/data/caption-file.js';
import { buildCaptionIndex } from '../../src/index/build-caption-index.js';
import { buildIndex } from '../../src/index/build-index.js';
import { BlipItmReranker } from '../../src/models/blip/blip-itm.js';
import { loadEncoder } from '../../src/models/load-encoder.js';
import { openEngine } from '../../src/search/open-engine.js';
import { packageRoot } from '../../src/util/package-root.js';
import { COLOURS, writeColourImage } from '../helpers.js';

export const CLIP = join(packageRoot(), 'models', 'colour-clip');
export const BLIP = join(packageRoot(), 'models', 'colour-blip');
export const WARM = ['red', 'yellow', 'white'];

export interface Collection {
  root: string;
  index: string;
  captionIndex: string;
}

/** Builds the colour collection in `dir` (make it with tempDir() where the suite is declared, not in a hook: a hook's after() runs when the hook ends). */
export async function colourCollection(dir: string): Promise<Collection> {
  const root = join(dir, 'photos');
  mkdirSync(join(root, 'warm'), { recursive: true });
  mkdirSync(join(root, 'cold'), { recursive: true });
  const names = Object.keys(COLOURS);
  await Promise.all(names.map((n) => writeColourImage(join(root, WARM.includes(n) ? 'warm' : 'cold', `${n}.jpg`), COLOURS[n]!, 'jpeg', 96)));
  await writeColourImage(join(root, 'warm', 'red2.jpg'), [215, 25, 35], 'jpeg', 96);
  const encoder = await loadEncoder(CLIP);
  const blip = await BlipItmReranker.load(BLIP);
  const index = join(dir, 'photos.duo');
  await buildIndex({ root, indexPath: index, encoder, modelSpec: CLIP, reranker: blip, rerankerSpec: BLIP });
  const file = join(dir, 'captions.jsonl');
  writeFileSync(file, names.map((n, i) => JSON.stringify({ id: `c${i}`, text: `a ${n} photo`, album: i % 2 ? 'odd' : 'even' })).join('\n'));
  const captionIndex = join(dir, 'captions.duo');
  await buildCaptionIndex({ captions: await readCaptionFile(file), indexPath: captionIndex, encoder, modelSpec: CLIP, source: file });
  await encoder.dispose();
  await blip.dispose();
  return { root, index, captionIndex };
}

/** Engines over the collection as `duo serve` opens them (the recorded cross-encoder). */
export async function openEngines(c: Collection) {
  const engine = await openEngine({ index: c.index });
  const captions = await openEngine({ index: c.captionIndex, reranker: BLIP });
  return { engine, captions, close: async () => { await engine.close(); await captions.close(); } };
}

/** A multipart/form-data body for inject(): text fields, and files as [field, bytes, filename?, type?]. */
export function multipart(fields: Record<string, string>, files: [string, Buffer, string?, string?][] = []): { payload: Buffer; headers: Record<string, string> } {
  const boundary = `----duo${Math.random().toString(16).slice(2)}`;
  const chunks: Buffer[] = [];
  for (const [name, value] of Object.entries(fields)) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`));
  }
  for (const [name, data, filename = 'query.jpg', type = 'image/jpeg'] of files) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"; filename="${filename}"\r\nContent-Type: ${type}\r\n\r\n`), data, Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { payload: Buffer.concat(chunks), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}
