import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { loadImage } from '../../src/data/image-loader.js';
import { DuoError } from '../../src/errors.js';
import { tempDir, writeColourImage } from '../helpers.js';

const dir = tempDir();
const px = (img: { data: Uint8ClampedArray; width: number }, x: number, y: number) =>
  Array.from(img.data.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3));

describe('loadImage', () => {
  for (const format of ['jpeg', 'png', 'webp'] as const) {
    it(`decodes ${format} to 8-bit RGB`, async () => {
      const path = join(dir, `c.${format}`);
      await writeColourImage(path, [200, 40, 40], format, 32);
      const img = await loadImage(path);
      assert.equal(img.channels, 3);
      assert.equal(img.data.length, 32 * 32 * 3);
      const [r, g, b] = px(img, 16, 16);
      assert.ok(r! > 170 && g! < 80 && b! < 80, `${r},${g},${b}`);
    });
  }

  it('applies the EXIF orientation (a 40x20 photo tagged "rotate 90" decodes as 20x40)', async () => {
    const path = join(dir, 'rotated.jpg');
    const raw = Buffer.alloc(40 * 20 * 3, 128);
    // left half red, right half blue before rotation
    for (let y = 0; y < 20; y++) for (let x = 0; x < 40; x++) raw.set(x < 20 ? [255, 0, 0] : [0, 0, 255], (y * 40 + x) * 3);
    await sharp(raw, { raw: { width: 40, height: 20, channels: 3 } }).jpeg().withMetadata({ orientation: 6 }).toFile(path);
    const img = await loadImage(path);
    assert.equal(img.width, 20);
    assert.equal(img.height, 40);
    // orientation 6 = rotate 90° clockwise: the left (red) half ends on top
    assert.ok(px(img, 10, 5)[0]! > 200, 'top is red');
    assert.ok(px(img, 10, 35)[2]! > 200, 'bottom is blue');
  });

  it('turns greyscale into three equal channels', async () => {
    const path = join(dir, 'grey.png');
    await sharp(Buffer.alloc(16 * 16, 90), { raw: { width: 16, height: 16, channels: 1 } }).png().toFile(path);
    const img = await loadImage(path);
    assert.equal(img.data.length, 16 * 16 * 3);
    assert.deepEqual(px(img, 3, 3), [90, 90, 90]);
  });

  it('flattens transparency onto white', async () => {
    const path = join(dir, 'alpha.png');
    const rgba = Buffer.alloc(8 * 8 * 4);
    for (let i = 0; i < 64; i++) rgba.set([255, 0, 0, 0], i * 4); // fully transparent red
    await sharp(rgba, { raw: { width: 8, height: 8, channels: 4 } }).png().toFile(path);
    assert.deepEqual(px(await loadImage(path), 2, 2), [255, 255, 255]);
  });

  it('refuses an image over the pixel limit before decoding it', async () => {
    const path = join(dir, 'big.png');
    await writeColourImage(path, [1, 2, 3], 'png', 200);
    await assert.rejects(loadImage(path, { maxPixels: 10_000 }), (e: unknown) => e instanceof DuoError && e.code === 'IMAGE_TOO_LARGE' && e.message.includes('big.png') && e.message.includes('40000'));
  });

  it('names a corrupt file and a missing file', async () => {
    const bad = join(dir, 'bad.jpg');
    writeFileSync(bad, Buffer.from('this is not a jpeg at all'));
    await assert.rejects(loadImage(bad), (e: unknown) => e instanceof DuoError && e.code === 'BAD_IMAGE' && e.message.includes('bad.jpg'));
    const truncated = join(dir, 'truncated.jpg');
    await writeColourImage(join(dir, 'whole.jpg'), [9, 9, 9], 'jpeg', 64);
    const { readFileSync } = await import('node:fs');
    const whole = readFileSync(join(dir, 'whole.jpg'));
    writeFileSync(truncated, whole.subarray(0, whole.length >> 1));
    await assert.rejects(loadImage(truncated), (e: unknown) => e instanceof DuoError && e.message.includes('truncated.jpg'));
    await assert.rejects(loadImage(join(dir, 'nope.jpg')), (e: unknown) => e instanceof DuoError && e.code === 'FILE_NOT_FOUND');
  });

  it('decodes bytes as well as paths, identically', async () => {
    const path = join(dir, 'same.png');
    await writeColourImage(path, [10, 120, 250], 'png', 16);
    const { readFileSync } = await import('node:fs');
    const a = await loadImage(path);
    const b = await loadImage(readFileSync(path), { name: 'same.png' });
    assert.deepEqual(Array.from(a.data), Array.from(b.data));
    assert.equal(b.source, 'same.png');
  });
});
