/**
 * The open vocabulary's measurement on Flickr8k dev (README "Open vocabulary"): a pack trained
 * without some words (`duo train --hold-out 150`), that pack with an open vocabulary built by
 * `duo open-vocab` under several settings, and the pack that saw the words, on the dev captions
 * that contain a held-out word and on all of dev. Also checks that an open vocabulary leaves the
 * embedding of every caption made of trained words bit for bit as it was.
 *
 *   npm run eval:open-vocab -- --run runs/<held-out run> --reference <pack> [--words 20000]
 *
 * Packs are written under a temporary folder; the reference pack is only read.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { readFlickr8k } from '../src/data/readers/flickr8k.js';
import { evaluateEmbeddings, rsum } from '../src/eval/retrieval-eval.js';
import { loadEncoder } from '../src/models/load-encoder.js';
import { StarterEncoder } from '../src/models/starter/starter-encoder.js';
import { words } from '../src/models/starter/vocab.js';
import { exportStarterPack } from '../src/train/export-pack.js';
import { buildOpenVocab, type MapTarget } from '../src/train/open-vocab/build-open-vocab.js';
import { readGlove, winkVectorsPath } from '../src/train/open-vocab/glove-reader.js';
import { splitFeatures } from '../src/train/starter-features.js';

const { values: a } = parseArgs({
  options: {
    run: { type: 'string' },
    reference: { type: 'string', default: 'models/starter' },
    data: { type: 'string', default: '../shared/datasets/flickr8k' },
    cache: { type: 'string', default: '.cache' },
    words: { type: 'string', default: '20000' },
    /** target:scale pairs for the held-out pack; use trained:… for a run started from GloVe */
    variants: { type: 'string', default: 'learned:1,learned:2,learned:3,learned:4,trained:1,trained:3' },
    /** the same for the reference pack */
    'reference-variants': { type: 'string', default: 'learned:1,learned:3' },
  },
});
if (!a.run) throw new Error('--run <held-out run folder> is required');
const count = Number(a.words);
const tmp = mkdtempSync(join(tmpdir(), 'duo-open-vocab-'));
const heldOut = new Set((JSON.parse(readFileSync(join(a.run, 'params.json'), 'utf8')) as { data: { heldOut: string[] } }).data.heldOut);
const refVocab = new Set(JSON.parse(readFileSync(join(a.reference!, 'vocab.json'), 'utf8')) as string[]);

const dev = await readFlickr8k(a.data!, 'dev');
const imageRow = new Map(dev.images.map((img, i) => [img.id, i]));
const captionImage = dev.captions.map((c) => imageRow.get(c.imageId)!);
const features = await splitFeatures(dev, join(a.reference!, 'backbone.onnx'), a.cache!);
const texts = dev.captions.map((c) => c.text);
const withHeldOut = texts.flatMap((t, i) => (words(t).some((w) => heldOut.has(w)) ? [i] : []));
const allKnown = texts.flatMap((t, i) => (words(t).every((w) => refVocab.has(w)) ? [i] : []));
const outsideRef = texts.flatMap((t, i) => (words(t).some((w) => !refVocab.has(w)) ? [i] : []));
console.log(`held-out words: ${heldOut.size}; dev captions with one: ${withHeldOut.length}; dev captions with a word outside the reference vocabulary: ${outsideRef.length}`);

const glove = await readGlove(winkVectorsPath(), (w) => /^[a-z0-9]+$/.test(w));
const fmt = (x: number) => x.toFixed(2);

async function evaluate(label: string, dir: string): Promise<Float32Array[]> {
  const encoder = await loadEncoder(dir);
  if (!(encoder instanceof StarterEncoder)) throw new Error(`${dir} is not a starter pack`);
  const img = await encoder.embedFeatures(features);
  const txt = await encoder.encodeTexts(texts);
  await encoder.dispose();
  const all = evaluateEmbeddings(img, txt, captionImage);
  const sub = (rows: number[]) => evaluateEmbeddings(img, rows.map((i) => txt[i]!), rows.map((i) => captionImage[i]!)).textToImage;
  const h = sub(withHeldOut);
  const o = sub(outsideRef);
  console.log(
    `| ${label} | ${fmt(h['R@1'])} | ${fmt(h['R@5'])} | ${fmt(h['R@10'])} | ${fmt(o['R@1'])} | ${fmt(o['R@5'])} | ${fmt(o['R@10'])} | ` +
      `${fmt(all.textToImage['R@1'])} | ${fmt(all.textToImage['R@5'])} | ${fmt(all.textToImage['R@10'])} | ${fmt(rsum(all))} |`,
  );
  return txt;
}

async function withOpenVocab(base: string, name: string, target: MapTarget, scale: number): Promise<string> {
  const dir = join(tmp, name);
  cpSync(base, dir, { recursive: true });
  const r = await buildOpenVocab({ pack: dir, count, glovePath: winkVectorsPath(), glove, target, scale, command: 'bench/open-vocab-heldout.ts' });
  const open = new Set(JSON.parse(readFileSync(join(dir, 'open_vocab.json'), 'utf8')) as string[]);
  console.log(`  (${name}: λ=${r.lambda}, ${r.unit ? 'unit' : 'raw'} rows, validation cosine ${Math.max(...r.tried.map((t) => t.cosine)).toFixed(3)}; ${[...heldOut].filter((w) => open.has(w)).length}/${heldOut.size} held-out words in its ${r.words} open words)`);
  return dir;
}

const heldPack = join(tmp, 'held-out');
cpSync(a.reference!, heldPack, { recursive: true, filter: (src) => !/open_vocab|cross_/.test(src) });
await exportStarterPack(a.run, heldPack);
console.log('| pack | held-out captions R@1 | R@5 | R@10 | captions outside the reference vocabulary R@1 | R@5 | R@10 | all dev t→i R@1 | R@5 | R@10 | rsum |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
await evaluate('(a) trained without the held-out words: dropped', heldPack);
const variants = (spec: string) => spec.split(',').map((v) => v.split(':')).map(([t, x]) => [t as MapTarget, Number(x)] as const);
for (const [target, scale] of variants(a.variants!)) {
  await evaluate(`(b) + open vocabulary, ${target}, scale ${scale}`, await withOpenVocab(heldPack, `held-${target}-${scale}`, target, scale));
}
const refText = await evaluate('(c) reference: trained with them', a.reference!);
for (const [target, scale] of variants(a['reference-variants']!)) {
  const dir = await withOpenVocab(a.reference!, `ref-${target}-${scale}`, target, scale);
  const txt = await evaluate(`(d) reference + open vocabulary, ${target}, scale ${scale}`, dir);
  // encoded 256 to a batch, a caption's row is padded to its batch's longest: a batch that now holds
  // an open word can be longer, and the masked sum then runs over more zeros (last-bit changes)
  const changed = allKnown.filter((i) => txt[i]!.some((x, j) => x !== refText[i]![j]));
  const maxDiff = Math.max(0, ...changed.flatMap((i) => [...txt[i]!].map((x, j) => Math.abs(x - refText[i]![j]!))));
  const one = await loadEncoder(dir);
  const alone = await Promise.all(allKnown.slice(0, 200).map(async (i) => (await one.encodeTexts([texts[i]!]))[0]!));
  await one.dispose();
  const plain = await loadEncoder(a.reference!);
  const aloneChanged = (await Promise.all(allKnown.slice(0, 200).map(async (i, k) => (await plain.encodeTexts([texts[i]!]))[0]!.some((x, j) => x !== alone[k]![j])))).filter(Boolean).length;
  await plain.dispose();
  console.log(`  captions of trained words only: ${allKnown.length}; in batches of 256, embeddings changed: ${changed.length} (max |Δ| ${maxDiff.toExponential(1)}); encoded one at a time (first 200): changed ${aloneChanged}`);
}
rmSync(tmp, { recursive: true, force: true });
