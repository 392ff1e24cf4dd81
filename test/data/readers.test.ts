import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parquetWriteFile } from 'hyparquet-writer';
import { readFlickr30kCsv } from '../../src/data/readers/flickr30k-csv.js';
import { readFlickr8k } from '../../src/data/readers/flickr8k.js';
import { readHfParquet } from '../../src/data/readers/hf-parquet.js';
import { readKarpathy } from '../../src/data/readers/karpathy.js';
import { openDataset } from '../../src/data/readers/open-dataset.js';
import { readCaptionFile } from '../../src/data/caption-file.js';
import { loadImage } from '../../src/data/image-loader.js';
import { DuoError } from '../../src/errors.js';
import { assertDatasetContract } from '../contracts/dataset.contract.js';
import { tempDir, writeColourImage } from '../helpers.js';

const SHARED = join(import.meta.dirname, '..', '..', '..', 'shared', 'datasets', 'flickr8k');

async function makeImages(dir: string, names: string[]): Promise<void> {
  mkdirSync(dir, { recursive: true });
  await Promise.all(names.map((n, i) => writeColourImage(join(dir, n), [i * 40, 100, 200 - i * 40])));
}

const isCode = (code: string, text?: RegExp) => (e: unknown) => e instanceof DuoError && e.code === code && (!text || text.test(e.message));

describe('Flickr8k reader', () => {
  it('reads a small Flickr8k layout, keeping the original tokenisation', async () => {
    const dir = tempDir();
    await makeImages(join(dir, 'images'), ['a.jpg', 'b.jpg', 'c.jpg']);
    const lines = ['a.jpg', 'b.jpg', 'c.jpg'].flatMap((n) => [0, 1].map((k) => `${n}#${k}\tA "quoted"  caption of ${n} .`));
    writeFileSync(join(dir, 'Flickr8k.token.txt'), `${lines.join('\n')}\n`);
    writeFileSync(join(dir, 'Flickr_8k.devImages.txt'), 'a.jpg\nc.jpg\n');
    const ds = await readFlickr8k(dir, 'dev');
    assertDatasetContract(ds, { images: 2, captions: 4 });
    assert.equal(ds.captions[0]!.text, 'A "quoted"  caption of a.jpg .');
    await assert.rejects(readFlickr8k(dir, 'test'), isCode('DATASET_FORMAT', /Flickr_8k\.testImages\.txt/));
    writeFileSync(join(dir, 'Flickr8k.token.txt'), 'a.jpg no tab here\n');
    await assert.rejects(readFlickr8k(dir, 'dev'), isCode('DATASET_FORMAT', /line 1/));
  });

  it('reads ../shared/datasets/flickr8k: 6000 train and 1000 dev images, five captions each', { skip: !existsSync(SHARED) && 'no shared dataset' }, async () => {
    const dev = await readFlickr8k(SHARED, 'dev');
    assertDatasetContract(dev, { images: 1000, captions: 5000 });
    const train = await readFlickr8k(SHARED, 'train');
    assertDatasetContract(train, { images: 6000, captions: 30000 });
    const devIds = new Set(dev.images.map((i) => i.id));
    assert.ok(train.images.every((i) => !devIds.has(i.id)), 'train and dev are disjoint');
  });
});

describe('Flickr30k results.csv reader', () => {
  it('reads the pipe-separated file, optionally limited to a list of images', async () => {
    const dir = tempDir();
    await makeImages(join(dir, 'images'), ['1.jpg', '2.jpg']);
    const csv = ['image_name| comment_number| comment', '1.jpg| 0| A man | with a pipe in the text .', '1.jpg| 1| Another one .', '2.jpg| 0| Two .'];
    writeFileSync(join(dir, 'results.csv'), `${csv.join('\n')}\n`);
    const ds = await readFlickr30kCsv(join(dir, 'results.csv'), join(dir, 'images'));
    assertDatasetContract(ds, { images: 2, captions: 3 });
    assert.equal(ds.captions[0]!.text, 'A man | with a pipe in the text .');
    const one = await readFlickr30kCsv(join(dir, 'results.csv'), join(dir, 'images'), { imageNames: ['2.jpg'] });
    assertDatasetContract(one, { images: 1, captions: 1 });
    assertDatasetContract(await openDataset(dir, { split: 'all' }), { images: 2, captions: 3 });
    await assert.rejects(openDataset(join(dir, 'results.csv'), { split: 'test' }), isCode('BAD_ARGUMENT', /no splits/));
    writeFileSync(join(dir, 'bad.csv'), 'name,comment\n');
    await assert.rejects(readFlickr30kCsv(join(dir, 'bad.csv'), dir), isCode('DATASET_FORMAT', /bad\.csv/));
  });
});

describe('Karpathy JSON reader', () => {
  it('reads one split; "dev" means "val" and restval counts as train', async () => {
    const dir = tempDir();
    await makeImages(join(dir, 'images'), ['x.jpg', 'y.jpg', 'z.jpg']);
    const sentences = (n: string) => [{ raw: `first of ${n} ` }, { raw: `second of ${n}` }];
    const json = {
      dataset: 'flickr8k',
      images: [
        { filename: 'x.jpg', split: 'train', sentences: sentences('x') },
        { filename: 'y.jpg', split: 'val', sentences: sentences('y') },
        { filename: 'z.jpg', split: 'restval', sentences: sentences('z') },
      ],
    };
    writeFileSync(join(dir, 'dataset_flickr8k.json'), JSON.stringify(json));
    const dev = await openDataset(join(dir, 'dataset_flickr8k.json'), { split: 'dev' });
    assertDatasetContract(dev, { images: 1, captions: 2 });
    assert.equal(dev.captions[0]!.text, 'first of y');
    assertDatasetContract(await readKarpathy(join(dir, 'dataset_flickr8k.json'), join(dir, 'images'), 'train'), { images: 2, captions: 4 });
    writeFileSync(join(dir, 'broken.json'), JSON.stringify({ images: [{ filename: 3, split: 'val', sentences: [] }] }));
    await assert.rejects(readKarpathy(join(dir, 'broken.json'), dir, 'val'), isCode('DATASET_FORMAT', /images\[0\]\.filename/));
  });
});

describe('Hugging Face parquet reader (lmms-lab/flickr30k layout)', () => {
  it('reads image bytes and caption lists; the bytes decode like files', async () => {
    const dir = tempDir();
    await makeImages(dir, ['p.png', 'q.png']);
    const bytes = ['p.png', 'q.png'].map((n) => new Uint8Array(readFileSync(join(dir, n))));
    const file = join(dir, 'test-00000-of-00001.parquet');
    await parquetWriteFile({
      filename: file,
      columnData: [
        { name: 'image', data: bytes.map((b, i) => ({ bytes: b, path: `${'pq'[i]}.png` })) },
        { name: 'caption', data: [['a p', 'another p'], ['a q']] },
        { name: 'filename', data: ['p.png', 'q.png'] },
      ],
      schema: [
        { name: 'root', num_children: 3 },
        { name: 'image', repetition_type: 'OPTIONAL', num_children: 2 },
        { name: 'bytes', type: 'BYTE_ARRAY', repetition_type: 'OPTIONAL' },
        { name: 'path', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' },
        { name: 'caption', repetition_type: 'OPTIONAL', converted_type: 'LIST', num_children: 1 },
        { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
        { name: 'element', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' },
        { name: 'filename', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' },
      ],
    });
    const ds = await readHfParquet([file]);
    assertDatasetContract(ds, { images: 2, captions: 3 });
    assert.deepEqual(ds.captions.map((c) => c.text), ['a p', 'another p', 'a q']);
    const img = await loadImage(ds.images[1]!.source as Uint8Array);
    assert.equal(img.width, 64);
    assertDatasetContract(await openDataset(dir, { split: 'test' }), { images: 2, captions: 3 });
    writeFileSync(join(dir, 'junk.parquet'), 'not parquet');
    await assert.rejects(readHfParquet([join(dir, 'junk.parquet')]), isCode('DATASET_FORMAT', /junk\.parquet/));
  });
});

describe('caption collection files', () => {
  it('reads .txt lines and .jsonl rows with their fields as metadata', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'c.txt'), 'a dog runs\n\n  two kids play  \n');
    assert.deepEqual(await readCaptionFile(join(dir, 'c.txt')), [
      { id: 'line-1', text: 'a dog runs' },
      { id: 'line-3', text: 'two kids play' },
    ]);
    writeFileSync(join(dir, 'c.jsonl'), '{"id": 7, "text": "a red car", "year": 2020, "tags": ["x"]}\n{"text": "a cat"}\n');
    assert.deepEqual(await readCaptionFile(join(dir, 'c.jsonl')), [
      { id: '7', text: 'a red car', meta: { year: 2020 } },
      { id: 'line-2', text: 'a cat' },
    ]);
  });

  it('names the file and line of what is wrong', async () => {
    const dir = tempDir();
    const cases: [string, string, RegExp][] = [
      ['bad.jsonl', '{"text": "ok"}\n{oops\n', /bad\.jsonl.*line 2 is not valid JSON/],
      ['notext.jsonl', '{"id": "a", "caption": "x"}\n', /notext\.jsonl.*line 1 has no "text"/],
      ['dup.jsonl', '{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n', /dup\.jsonl.*duplicate id "a"/],
      ['empty.txt', '\n\n', /empty\.txt.*no captions/],
      ['c.csv', 'text\nx\n', /c\.csv.*\.txt .* or \.jsonl/],
    ];
    for (const [name, body, why] of cases) {
      writeFileSync(join(dir, name), body);
      await assert.rejects(readCaptionFile(join(dir, name)), isCode('DATASET_FORMAT', why));
    }
    await assert.rejects(readCaptionFile(join(dir, 'missing.txt')), isCode('FILE_NOT_FOUND', /missing\.txt/));
  });
});
