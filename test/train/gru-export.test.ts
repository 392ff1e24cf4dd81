/**
 * The GRU text encoder's ONNX graph (ONNX's GRU op, text-graph.ts) against the training code's
 * forward pass (src/train/gru.ts): the same embeddings for captions of different lengths padded
 * into one batch, through a written pack, and with an open vocabulary added to that pack.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { loadEncoder } from '../../src/models/load-encoder.js';
import type { DualEncoderConfig } from '../../src/models/starter/head-spec.js';
import { StarterEncoder } from '../../src/models/starter/starter-encoder.js';
import { textModelOnnx } from '../../src/models/starter/text-graph.js';
import { loadTensors } from '../../src/models/tensor-file.js';
import { encodeTextIds, initDualEncoder, seeded, type DualEncoder } from '../../src/train/dual-encoder.js';
import { exportStarterPack } from '../../src/train/export-pack.js';
import { buildOpenVocab } from '../../src/train/open-vocab/build-open-vocab.js';
import { TINY_CONFIG, trainTinyStarter } from '../fixtures/tiny-starter.js';
import { tempDir } from '../helpers.js';
import { writeWinkFile } from './wink-file.js';

const config: DualEncoderConfig = { imageDim: 4, vocabSize: 13, wordDim: 6, embedDim: 5, head: 'mlp', hidden: 7, textEncoder: { kind: 'gru', hidden: 8 } };

/** Runs text_model.onnx bytes on word-id rows padded to the longest, as StarterEncoder.encodeTexts does. */
async function runGraph(bytes: Uint8Array, ids: number[][]): Promise<Float32Array[]> {
  const session = await ort.InferenceSession.create(bytes);
  const len = Math.max(...ids.map((r) => r.length));
  const input = new BigInt64Array(ids.length * len);
  const mask = new BigInt64Array(ids.length * len);
  ids.forEach((row, i) => row.forEach((id, j) => {
    input[i * len + j] = BigInt(id);
    mask[i * len + j] = 1n;
  }));
  const out = await session.run({
    input_ids: new ort.Tensor('int64', input, [ids.length, len]),
    attention_mask: new ort.Tensor('int64', mask, [ids.length, len]),
  });
  await session.release();
  const data = out.text_embeds!.data as Float32Array;
  const d = out.text_embeds!.dims[1]!;
  return ids.map((_, i) => data.slice(i * d, (i + 1) * d));
}

async function viaTraining(model: DualEncoder, ids: number[][]): Promise<Float32Array[]> {
  const m = await encodeTextIds(model, ids.map((r) => Int32Array.from(r)));
  return ids.map((_, i) => m.data.slice(i * m.cols, (i + 1) * m.cols));
}

function assertClose(got: Float32Array[], want: Float32Array[], tol = 1e-4): void {
  assert.equal(got.length, want.length);
  got.forEach((v, i) => v.forEach((x, j) => assert.ok(Math.abs(x - want[i]![j]!) < tol, `text ${i}, dim ${j}: ${x} vs ${want[i]![j]}`)));
}

describe('GRU text graph', () => {
  it('gives the training forward pass\'s embeddings for 1 to 14 words padded into one batch', async () => {
    const model = initDualEncoder(config, 5);
    // weights well off their small start, so the gates saturate differently per unit and step
    const rand = seeded(6);
    for (const [name, p] of model.params) if (name.startsWith('text.')) for (let i = 0; i < p.length; i++) p[i]! += (rand() * 2 - 1) * 0.8;
    const ids = [
      [4], // one word
      [0], // a caption of unknown words, as Vocabulary.encode gives it: [UNK]
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 1, 2],
      [3, 3, 7],
      [7, 3, 3], // the same words in another order
    ];
    const bytes = textModelOnnx(model.params, config);
    const onnx = await runGraph(bytes, ids);
    assertClose(onnx, await viaTraining(model, ids));
    assert.ok(onnx[3]!.some((x, j) => Math.abs(x - onnx[4]![j]!) > 1e-3), 'word order changes a GRU embedding');
    // alone or padded beside a longer caption: the same vector (sequence_lens stops each caption)
    assertClose(await runGraph(bytes, [[4]]), [onnx[0]!], 1e-5);
  });
});

describe('GRU starter pack', () => {
  const tmp = tempDir();
  let runDir: string;
  let pack: string;
  let vocab: Awaited<ReturnType<typeof trainTinyStarter>>['vocab'];
  const tinyGru = { ...TINY_CONFIG, textEncoder: { kind: 'gru' as const, hidden: 5 } };
  before(async () => {
    runDir = join(tmp, 'run');
    ({ vocab } = await trainTinyStarter(runDir, { textEncoder: 'gru', textHidden: 5 }));
    pack = join(tmp, 'pack');
    await exportStarterPack(runDir, pack);
  });

  it('records its text encoder in the manifest, and loads to the embeddings training computes', async () => {
    const manifest = JSON.parse(readFileSync(join(pack, 'manifest.json'), 'utf8'));
    assert.deepEqual(manifest.text.encoder, { kind: 'gru', hidden: 5 });
    assert.equal(manifest.training.hyper.textEncoder, 'gru');
    const encoder = await loadEncoder(pack);
    assert.ok(encoder instanceof StarterEncoder);
    const model = { ...initDualEncoder({ ...tinyGru, vocabSize: vocab.size }, 1), params: await loadTensors(join(runDir, 'best.bin')) };
    const texts = ['a red car on a road', 'dog', 'unknownword', 'snow dog a in the'];
    const want = await encodeTextIds(model, texts.map((t) => vocab.encode(t)));
    assertClose(await encoder.encodeTexts(texts), texts.map((_, i) => want.data.slice(i * 6, (i + 1) * 6)));
    await encoder.dispose();
  });

  it('takes an open vocabulary: its mapped rows are word vectors the GRU reads', async () => {
    const open = join(tmp, 'open');
    mkdirSync(open);
    cpSync(pack, open, { recursive: true });
    const vectors = join(tmp, 'vectors.json');
    const g = seeded(9);
    const row = () => Array.from({ length: 4 }, () => Math.round((g() * 2 - 1) * 1000) / 1000);
    writeWinkFile(vectors, [...vocab.tokens.slice(1).map((w) => [w, row()] as [string, number[]]), ['puppy', row()], ['automobile', row()]]);
    await buildOpenVocab({ pack: open, count: 2, glovePath: vectors, command: 'test' });
    assert.deepEqual(JSON.parse(readFileSync(join(open, 'open_vocab.json'), 'utf8')), ['puppy', 'automobile']);
    const encoder = await loadEncoder(open);
    // the training model with the open rows appended to its word vectors, as the graph's ids number them
    const params = await loadTensors(join(runDir, 'best.bin'));
    const t = await loadTensors(join(open, 'open_vocab.bin'));
    const [glove, W, b] = [t.get('glove')!, t.get('W')!, t.get('b')!];
    const D = TINY_CONFIG.wordDim;
    const mapped = (r: number) => Float32Array.from({ length: D }, (_, k) => b[k]! + [0, 1, 2, 3].reduce((s, j) => s + glove[r * 4 + j]! * W[j * D + k]!, 0));
    const embed = new Float32Array((vocab.size + 2) * D);
    embed.set(params.get('text.embed')!);
    embed.set(mapped(0), vocab.size * D);
    embed.set(mapped(1), (vocab.size + 1) * D);
    params.set('text.embed', embed);
    const model = { ...initDualEncoder({ ...tinyGru, vocabSize: vocab.size + 2 }, 1), params };
    const [puppy, automobile] = [vocab.size, vocab.size + 1];
    const ids = [[automobile], [vocab.encode('a')[0]!, puppy], [...vocab.encode('a red car')]];
    const texts = ['automobile', 'a puppy', 'a red car'];
    assertClose(await encoder.encodeTexts(texts), await viaTraining(model, ids));
    await encoder.dispose();
  });
});
