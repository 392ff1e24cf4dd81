import { env } from '@huggingface/transformers';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { cpSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DuoError } from '../../src/errors.js';
import { colourClipFiles, SIGLIP_TEXT_LENGTH } from '../fixtures/colour-clip.js';
import { fixtureModelPath, loadEncoder } from '../../src/models/load-encoder.js';
import { packageRoot } from '../../src/util/package-root.js';
import { runEncoderContract } from '../contracts/encoder.contract.js';
import { COLOURS, tempDir, writeColourImage } from '../helpers.js';

const CLIP_DIR = join(packageRoot(), 'models', 'colour-clip');
const SIGLIP_DIR = join(packageRoot(), 'models', 'colour-siglip');

runEncoderContract('CLIP adapter on the colour-clip fixture', () => loadEncoder(CLIP_DIR));
runEncoderContract('SigLIP adapter on the colour-siglip fixture', () => loadEncoder(SIGLIP_DIR));

const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, x, i) => s + x * b[i]!, 0);

describe('colour fixtures through the real adapter', () => {
  for (const [family, dir] of [['clip', CLIP_DIR], ['siglip', SIGLIP_DIR]] as const) {
    it(`${family}: each colour word ranks the image of that colour first`, async () => {
      const tmp = tempDir();
      const names = Object.keys(COLOURS);
      const paths = names.map((n) => join(tmp, `${n}.jpg`));
      await Promise.all(names.map((n, i) => writeColourImage(paths[i]!, COLOURS[n]!)));
      const encoder = await loadEncoder(dir);
      const images = await encoder.encodeImages(paths);
      const queries = await encoder.encodeTexts(names.map((n) => `a photo of something ${n}`));
      names.forEach((n, q) => {
        const scores = images.map((v) => dot(queries[q]!, v));
        const best = scores.indexOf(Math.max(...scores));
        assert.equal(names[best], n, `"${n}" ranked ${names[best]} first (${scores.map((s) => s.toFixed(2))})`);
      });
      await encoder.dispose();
    });
  }

  it('fixtureModelPath is the colour-clip fixture', () => {
    assert.equal(fixtureModelPath(), CLIP_DIR);
  });

  it('the committed fixture files are exactly what the generator writes', () => {
    for (const [family, dir] of [['clip', CLIP_DIR], ['siglip', SIGLIP_DIR]] as const) {
      for (const [name, data] of colourClipFiles(family)) {
        const onDisk = readFileSync(join(dir, name));
        assert.ok(onDisk.equals(Buffer.from(data)), `${family}/${name} differs: run npm run fixtures`);
      }
    }
  });

  it('SigLIP: pads to max_length (the fixture graph accepts only 64 tokens) and scores with a sigmoid', async () => {
    const encoder = await loadEncoder(SIGLIP_DIR);
    assert.equal(SIGLIP_TEXT_LENGTH, 64);
    const [short, long] = await encoder.encodeTexts(['red', 'red '.repeat(100)]);
    assert.equal(short!.length, encoder.dim);
    assert.equal(long!.length, encoder.dim);
    assert.deepEqual(encoder.similarity, { kind: 'sigmoid', logitScale: 10, logitBias: -5 });
    await encoder.dispose();
  });

  it('CLIP scores with cosine and says its outputs are normalised', async () => {
    const encoder = await loadEncoder(CLIP_DIR);
    assert.deepEqual(encoder.similarity, { kind: 'cosine' });
    assert.equal(encoder.normalized, true);
    assert.match(encoder.id, /^colour-clip@[0-9a-f]{12}$/);
    assert.equal(encoder.textCoverage, undefined, 'byte-level BPE reads every word: no coverage to report');
    await encoder.dispose();
  });
});

describe('loading errors name the place and what is missing', () => {
  it('a local directory without the vision model', async () => {
    const dir = join(tempDir(), 'broken-clip');
    cpSync(CLIP_DIR, dir, { recursive: true });
    rmSync(join(dir, 'onnx', 'vision_model.onnx'));
    await assert.rejects(loadEncoder(dir), (e: unknown) => {
      assert.ok(e instanceof DuoError);
      assert.equal(e.code, 'MODEL_NOT_FOUND');
      assert.match(e.message, /broken-clip/);
      assert.match(e.message, /onnx\/vision_model\.onnx/);
      return true;
    });
  });

  it('a directory that does not exist', async () => {
    await assert.rejects(loadEncoder('./no/such/model'), (e: unknown) => e instanceof DuoError && e.code === 'MODEL_NOT_FOUND' && /no\/such\/model/.test(e.message));
  });

  it('an unknown model_type', async () => {
    const dir = join(tempDir(), 'odd');
    cpSync(CLIP_DIR, dir, { recursive: true });
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    const { writeFileSync } = await import('node:fs');
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, model_type: 'bert' }));
    await assert.rejects(loadEncoder(dir), (e: unknown) => e instanceof DuoError && e.code === 'MODEL_UNSUPPORTED' && /"bert"/.test(e.message));
  });

  it('a hub id with remote loading off and nothing cached', async () => {
    await assert.rejects(
      loadEncoder('nobody/not-a-cached-clip', { allowRemote: false }),
      (e: unknown) => e instanceof DuoError && e.code === 'MODEL_NOT_FOUND' && /nobody\/not-a-cached-clip/.test(e.message),
    );
  });

  it('decides remote loading per call: loading never changes transformers.js\'s global env', async () => {
    const before = { ...env };
    await assert.rejects(loadEncoder('nobody/not-a-cached-clip', { allowRemote: false }), DuoError);
    const local = await loadEncoder(CLIP_DIR);
    await local.dispose();
    assert.equal(env.allowRemoteModels, true, 'remote models stay allowed for the other models in the process');
    assert.deepEqual({ ...env }, before);
  });

  it('the generated model directory has every file the adapter requires', () => {
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'preprocessor_config.json', 'onnx/text_model.onnx', 'onnx/vision_model.onnx']) {
      assert.ok(existsSync(join(CLIP_DIR, f)), f);
    }
  });
});

describe('fixture images', () => {
  it('writeColourImage writes decodable files of the requested format', async () => {
    const p = join(tempDir(), 'x.webp');
    await writeColourImage(p, [1, 2, 3], 'webp');
    assert.equal(readFileSync(p).subarray(8, 12).toString('ascii'), 'WEBP');
  });
});
