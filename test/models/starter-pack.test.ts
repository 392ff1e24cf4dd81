import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { readFlickr8k } from '../../src/data/readers/flickr8k.js';
import { evaluateRetrieval } from '../../src/eval/retrieval-eval.js';
import { defaultModelPath, loadEncoder } from '../../src/models/load-encoder.js';
import { StarterEncoder } from '../../src/models/starter/starter-encoder.js';
import { runEncoderContract } from '../contracts/encoder.contract.js';

const PACK = defaultModelPath();
const SHARED = join(import.meta.dirname, '..', '..', '..', 'shared', 'datasets', 'flickr8k');

runEncoderContract('starter pack (the default model)', () => loadEncoder(PACK));

describe('the shipped starter pack', () => {
  it('is the default model, loads as a StarterEncoder of two models sharing one backbone, and stays under 25 MiB', async () => {
    const encoder = await loadEncoder();
    assert.ok(encoder instanceof StarterEncoder);
    assert.equal(encoder.dim, 512);
    assert.deepEqual(encoder.parts.map((p) => [p.folder, p.features]), [['.', 'pooled'], ['member-1', 'pooled+mobilenet']]);
    assert.ok(Math.abs(encoder.parts.reduce((a, p) => a + p.weight, 0) - 1) < 1e-9);
    // its query bank: 3,000 captions and 1,000 images of the train split in the pack's 512-d space
    assert.deepEqual([encoder.queryBank!.texts.length / 512, encoder.queryBank!.images.length / 512, encoder.queryBank!.beta, encoder.queryBank!.lambda], [3000, 1000, 10, 1]);
    await encoder.dispose();
    const files = readdirSync(PACK, { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
    const bytes = files.reduce((s, f) => s + statSync(join(f.parentPath, f.name)).size, 0);
    assert.ok(bytes < 25 * 2 ** 20, `${(bytes / 2 ** 20).toFixed(1)} MiB`);
  });

  it('knows which query words it has never seen', async () => {
    const encoder = await loadEncoder(PACK);
    assert.deepEqual(encoder.textCoverage!('A dog runs on the beach'), { known: ['a', 'dog', 'runs', 'on', 'the', 'beach'], unknown: [] });
    assert.deepEqual(encoder.textCoverage!('a quokka'), { known: ['a'], unknown: ['quokka'] });
    assert.deepEqual(encoder.textCoverage!('zxqv wugglebottom'), { known: [], unknown: ['zxqv', 'wugglebottom'] });
    await encoder.dispose();
  });

  it('knows the most frequent GloVe words it was never trained on (its open vocabulary), and says where it stops', async () => {
    const m = JSON.parse(readFileSync(join(PACK, 'manifest.json'), 'utf8'));
    assert.equal(m.openVocabulary.count, JSON.parse(readFileSync(join(PACK, m.openVocabulary.words), 'utf8')).length);
    assert.match(m.openVocabulary.limit, /most frequent GloVe words/);
    const encoder = await loadEncoder(PACK);
    // "crimson" and "automobile" are in no training caption; "zebra" is past the open vocabulary's limit
    assert.deepEqual(encoder.textCoverage!('a crimson automobile by a zebra'), { known: ['a', 'crimson', 'automobile', 'by'], unknown: ['zebra'] });
    const [open, unk] = await encoder.encodeTexts(['crimson automobile', 'zebra']);
    assert.ok(open!.some((x, i) => Math.abs(x - unk![i]!) > 1e-3), 'open words embed as themselves, not as the empty query');
    await encoder.dispose();
  });

  it('has a manifest naming its backbone, training data, split and command', () => {
    const m = JSON.parse(readFileSync(join(PACK, 'manifest.json'), 'utf8'));
    assert.equal(m.format, 'duo-starter-pack');
    assert.match(m.backbone.source, /@vladmandic\/human-models@3\.0\.4/);
    assert.match(m.training.trainSplit, /train/);
    assert.equal(m.training.chosenOn, 'dev');
    assert.match(m.training.command, /^duo train/);
    assert.ok(m.devMetrics.textToImage['R@10'] >= 40, 'the recorded dev R@10 meets the target');
  });

  it('retrieves far above chance on 100 Flickr8k dev images', { skip: !existsSync(SHARED) && 'no shared dataset' }, async () => {
    const dev = await readFlickr8k(SHARED, 'dev');
    const keep = new Set(dev.images.slice(0, 100).map((i) => i.id));
    const ds = { ...dev, images: dev.images.filter((i) => keep.has(i.id)), captions: dev.captions.filter((c) => keep.has(c.imageId)) };
    const encoder = await loadEncoder(PACK);
    const r = await evaluateRetrieval(ds, encoder);
    await encoder.dispose();
    // chance is R@10 = 10 on 100 images; the pack scores ~45 on all 1000
    assert.ok(r.textToImage['R@10'] > 50, `t→i R@10 ${r.textToImage['R@10']}`);
    assert.ok(r.imageToText['R@10'] > 50, `i→t R@10 ${r.imageToText['R@10']}`);
  });
});
