/**
 * Encoder speed on this machine: one text query at a time (what search pays), and images
 * one at a time and in batches (what indexing pays), over Flickr8k dev images and captions.
 * Run: npm run bench:encoders [-- --model models/starter --images 64 --queries 200]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { formatTable } from '../src/cli/output.js';
import { readFlickr8k } from '../src/data/readers/flickr8k.js';
import { loadImage } from '../src/data/image-loader.js';
import { defaultModelPath, loadEncoder } from '../src/models/load-encoder.js';
import { packageRoot } from '../src/util/package-root.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: defaultModelPath() },
    data: { type: 'string', default: '../shared/datasets/flickr8k' },
    images: { type: 'string', default: '64' },
    queries: { type: 'string', default: '200' },
  },
});
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

const ds = await readFlickr8k(values.data!, 'dev');
const encoder = await loadEncoder(values.model!);
const captions = ds.captions.slice(0, Number(values.queries)).map((c) => c.text);
const paths = ds.images.slice(0, Number(values.images)).map((i) => i.source as string);

await encoder.encodeTexts([captions[0]!]); // warm-up
const text: number[] = [];
for (const c of captions) {
  const t = performance.now();
  await encoder.encodeTexts([c]);
  text.push(performance.now() - t);
}

await encoder.encodeImages([paths[0]!]);
const decode: number[] = [];
for (const p of paths.slice(0, 16)) {
  const t = performance.now();
  await loadImage(p);
  decode.push(performance.now() - t);
}
const single: number[] = [];
for (const p of paths) {
  const t = performance.now();
  await encoder.encodeImages([p]);
  single.push(performance.now() - t);
}
const t = performance.now();
await encoder.encodeImages(paths, { batchSize: 8 });
const batched = (performance.now() - t) / paths.length;
await encoder.dispose();

const rows = [
  ['text query, one at a time', captions.length, pct(text, 50), pct(text, 95)],
  ['image decode only (sharp)', decode.length, pct(decode, 50), pct(decode, 95)],
  ['image, one at a time (decode + model)', single.length, pct(single, 50), pct(single, 95)],
  ['image, batches of 8 (mean per image)', paths.length, batched, batched],
];
const machine = { cpus: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', node: process.version };
console.log(`encoder ${encoder.id} on Flickr8k dev (${machine.cpus} × ${machine.cpu})`);
console.log(formatTable(['what', 'n', 'p50 ms', 'p95 ms'], rows as (string | number)[][]));
const out = join(packageRoot(), 'bench', 'results');
mkdirSync(out, { recursive: true });
const name = `encoders-${encoder.id.split('@')[0]}.json`;
writeFileSync(join(out, name), `${JSON.stringify({ when: new Date().toISOString(), machine, model: encoder.id, rows: rows.map(([what, n, p50, p95]) => ({ what, n, p50, p95 })) }, null, 2)}\n`);
console.log(`wrote bench/results/${name}`);

