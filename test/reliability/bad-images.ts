/**
 * The image half of the bad-input matrix (issue [8]): every file is made here, by sharp and by
 * editing bytes, never copied from a dataset. Each case says what the engine must do with it:
 * index it (a valid if unusual image) or skip it with a reason matching `reason`.
 */
import { chmodSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import sharp from 'sharp';
import { COLOURS, writeColourImage } from '../helpers.js';

export interface ImageCase {
  /** the matrix row's label */
  label: string;
  /** path inside the images folder (the item's id when indexed) */
  file: string;
  /** index: a valid image, it must be in the index; skip: it must be reported skipped, with `reason` */
  expect: 'index' | 'skip';
  reason?: RegExp;
  /** the bytes an upload sends; absent for cases that exist only on a file system (a symlink loop, an unreadable file) */
  bytes?: Buffer;
  /** the case needs a user that permissions apply to (root reads every file) */
  needsNonRoot?: boolean;
  /** what POST /v1/search/image answers for its bytes, when not the default (200 for index, 422 BAD_IMAGE for skip) */
  api?: [number, string];
}

/** A solid-colour image with noise, as bytes. */
async function colour(name: keyof typeof COLOURS, format: 'jpeg' | 'png' | 'webp', dir: string): Promise<Buffer> {
  const path = join(dir, `.src-${name}.${format}`);
  await writeColourImage(path, COLOURS[name]!, format);
  return readFileSync(path);
}

const rgbNoise = (size: number, channels: number) => {
  const data = Buffer.alloc(size * size * channels);
  for (let i = 0; i < data.length; i++) data[i] = (i * 37 + (i >> 6) * 11) % 256;
  return data;
};

/** A JPEG whose SOF header claims width × height (the scan data stays that of the small image). */
function jpegClaiming(jpeg: Buffer, width: number, height: number): Buffer {
  const out = Buffer.from(jpeg);
  const sof = jpegSegments(jpeg).find(([, m]) => m >= 0xc0 && m <= 0xc3);
  if (!sof) throw new Error('no SOF marker');
  out.writeUInt16BE(height, sof[0] + 5);
  out.writeUInt16BE(width, sof[0] + 7);
  return out;
}

/** A PNG whose IHDR claims width × height, with a valid CRC, so the header alone is believed. */
function pngClaiming(png: Buffer, width: number, height: number): Buffer {
  const out = Buffer.from(png);
  out.writeUInt32BE(width, 16);
  out.writeUInt32BE(height, 20);
  out.writeUInt32BE(crc32(out.subarray(12, 29)), 29);
  return out;
}

/** Flips every third byte from `from` (to `to`, else to the last two bytes). */
function corrupt(bytes: Buffer, [from, to]: [number, number?]): Buffer {
  const out = Buffer.from(bytes);
  for (let i = from; i < Math.min(to ?? Infinity, out.length - 2); i += 3) out[i] = out[i]! ^ 0xa5;
  return out;
}

/** A JPEG's markers before its scan: [offset, marker, length]. */
function jpegSegments(jpeg: Buffer): [number, number, number][] {
  const out: [number, number, number][] = [];
  for (let i = 2; i < jpeg.length - 4; ) {
    if (jpeg[i] !== 0xff) throw new Error('not a JPEG marker');
    const marker = jpeg[i + 1]!;
    out.push([i, marker, jpeg.readUInt16BE(i + 2)]);
    if (marker === 0xda) return out;
    i += 2 + jpeg.readUInt16BE(i + 2);
  }
  throw new Error('no scan in the JPEG');
}

/** The JPEG's Huffman tables (DHT segments) */
function tablesOf(jpeg: Buffer): [number, number] {
  const dht = jpegSegments(jpeg).filter(([, m]) => m === 0xc4);
  return [dht[0]![0] + 5, dht.at(-1)![0] + 2 + dht.at(-1)![2]];
}

/** The JPEG's entropy-coded scan */
function scanOf(jpeg: Buffer): [number, number?] {
  const [at, , length] = jpegSegments(jpeg).at(-1)!;
  return [at + 2 + length];
}

/**
 * An AVIF turned into an HEIC as a phone writes it: brand `heic`, an HEVC-coded item (`hvc1`)
 * with its `hvcC` configuration (Main profile, 4:2:0, 8 bits) in place of the `av1C` one, box
 * sizes and the item's offset moved to match. libheif reads it up to the codec, so a libvips
 * without an HEVC decoder (sharp's prebuilt one) fails the way it fails on a real photo.
 */
function heicLike(avif: Buffer): Buffer {
  const boxAt = (type: string, buf: Buffer) => {
    const i = buf.indexOf(type, 0, 'latin1');
    if (i < 4) throw new Error(`no ${type} box`);
    return i - 4;
  };
  const config = Buffer.from(['01', '01', '60000000', '000000000000', '5a', 'f000', 'fc', 'fd', 'f8', 'f8', '0000', '0f', '00'].join(''), 'hex');
  const hvcc = Buffer.alloc(8);
  hvcc.writeUInt32BE(8 + config.length);
  hvcc.write('hvcC', 4, 'latin1');
  const av1c = boxAt('av1C', avif);
  const old = avif.readUInt32BE(av1c);
  const out = Buffer.concat([avif.subarray(0, av1c), hvcc, config, avif.subarray(av1c + old)]);
  const delta = hvcc.length + config.length - old;
  for (const t of ['meta', 'iprp', 'ipco']) out.writeUInt32BE(out.readUInt32BE(boxAt(t, out)) + delta, boxAt(t, out));
  // iloc version 0, 4-byte offsets, lengths and base offsets: one item whose data (in mdat, after meta) moved by delta
  const iloc = boxAt('iloc', out);
  if (out[iloc + 8] !== 0 || out.readUInt16BE(iloc + 12) !== 0x4440 || out.readUInt16BE(iloc + 14) !== 1) throw new Error('unexpected iloc layout');
  out.writeUInt32BE(out.readUInt32BE(iloc + 20) + delta, iloc + 20);
  for (const [from, to] of [['avif', 'heic'], ['av01', 'hvc1']] as const) {
    for (let i = out.indexOf(from, 0, 'latin1'); i >= 0; i = out.indexOf(from, i + 4, 'latin1')) out.write(to, i, 'latin1');
  }
  return out;
}

/** Writes the bad (and unusual but valid) files into `dir` beside a few good ones; returns every case. */
export async function writeImageCases(dir: string): Promise<ImageCase[]> {
  mkdirSync(dir, { recursive: true });
  const scratch = join(dir, '.scratch');
  mkdirSync(scratch);
  const jpeg = await colour('red', 'jpeg', scratch);
  const png = await colour('green', 'png', scratch);
  const webp = await colour('blue', 'webp', scratch);
  const size = 64;
  const grey = await sharp(rgbNoise(size, 1), { raw: { width: size, height: size, channels: 1 } }).png().toBuffer();
  const avif = await sharp(rgbNoise(size, 3), { raw: { width: size, height: size, channels: 3 } }).avif({ quality: 50, effort: 0 }).toBuffer();
  const frames = await Promise.all(['yellow', 'white', 'black'].map((n) => sharp({ create: { width: size, height: size, channels: 3, background: { r: COLOURS[n]![0], g: COLOURS[n]![1], b: COLOURS[n]![2] } } }).png().toBuffer()));

  const cases: ImageCase[] = [
    // good files: the index must hold exactly these and the valid-but-unusual ones below
    { label: 'good JPEG', file: 'good/red.jpg', expect: 'index', bytes: jpeg },
    { label: 'good PNG', file: 'good/green.png', expect: 'index', bytes: png },
    { label: 'good WebP', file: 'good/blue.webp', expect: 'index', bytes: webp },
    // broken files
    { label: 'truncated JPEG (first half)', file: 'bad/truncated.jpg', expect: 'skip', reason: /truncated\.jpg: .*premature end of JPEG image/, bytes: jpeg.subarray(0, jpeg.length >> 1) },
    { label: 'corrupt JPEG (Huffman tables scrambled)', file: 'bad/corrupt.jpg', expect: 'skip', reason: /corrupt\.jpg: .*Bogus Huffman table/, bytes: corrupt(jpeg, tablesOf(jpeg)) },
    { label: 'truncated PNG (first half)', file: 'bad/truncated.png', expect: 'skip', reason: /truncated\.png: .*libpng read error/, bytes: png.subarray(0, png.length >> 1) },
    { label: 'corrupt PNG (IDAT scrambled)', file: 'bad/corrupt.png', expect: 'skip', reason: /corrupt\.png: .*libpng read error/, bytes: corrupt(png, [64]) },
    { label: 'truncated WebP (first half)', file: 'bad/truncated.webp', expect: 'skip', reason: /truncated\.webp: .*unable to parse image/, bytes: webp.subarray(0, webp.length >> 1) },
    { label: 'corrupt WebP (bitstream scrambled)', file: 'bad/corrupt.webp', expect: 'skip', reason: /corrupt\.webp: .*unable to read pixels/, bytes: corrupt(webp, [40]) },
    { label: 'a text file named .jpg', file: 'bad/text.jpg', expect: 'skip', reason: /text\.jpg: Input file contains unsupported image format/, bytes: Buffer.from('this is not an image, only text with a .jpg name\n') },
    { label: 'a zero-byte file', file: 'bad/empty.png', expect: 'skip', reason: /empty\.png: the file is empty \(0 bytes\)/, bytes: Buffer.alloc(0), api: [400, 'BAD_ARGUMENT'] },
    { label: 'PNG header claiming 30000×30000 (decompression bomb)', file: 'bad/bomb.png', expect: 'skip', reason: /bomb\.png has 900000000 pixels, over the limit/, bytes: pngClaiming(png, 30000, 30000), api: [413, 'IMAGE_TOO_LARGE'] },
    { label: 'JPEG header claiming 30000×30000 (decompression bomb)', file: 'bad/bomb.jpg', expect: 'skip', reason: /bomb\.jpg has 900000000 pixels, over the limit/, bytes: jpegClaiming(jpeg, 30000, 30000), api: [413, 'IMAGE_TOO_LARGE'] },
    { label: 'HEIC (HEVC-coded; this libvips has no HEVC decoder)', file: 'bad/phone.heic', expect: 'skip', reason: /phone\.heic: .*not been built in: HEVC/, bytes: heicLike(avif) },
    // valid but unusual files: decoded to 8-bit sRGB and indexed
    { label: 'animated GIF (3 frames; the first is used)', file: 'odd/animated.gif', expect: 'index', bytes: await sharp(frames, { join: { animated: true } }).gif({ delay: [100, 100, 100] }).toBuffer() },
    { label: 'CMYK JPEG', file: 'odd/cmyk.jpg', expect: 'index', bytes: await sharp(jpeg).toColourspace('cmyk').jpeg().toBuffer() },
    { label: '16-bit PNG', file: 'odd/sixteen-bit.png', expect: 'index', bytes: await sharp(png).toColourspace('rgb16').png().toBuffer() },
    { label: 'palette PNG', file: 'odd/palette.png', expect: 'index', bytes: await sharp(png).png({ palette: true, colours: 16 }).toBuffer() },
    { label: 'grey + alpha PNG', file: 'odd/grey-alpha.png', expect: 'index', bytes: await sharp(grey).ensureAlpha(0.5).png().toBuffer() },
    {
      // libjpeg only warns about bad Huffman codes in the scan and decodes what it can, as image
      // viewers do; failing on warnings would also skip camera files with harmless ones
      label: 'JPEG with scrambled scan data (libjpeg warns only)',
      file: 'odd/scrambled-scan.jpg',
      expect: 'index',
      bytes: corrupt(jpeg, scanOf(jpeg)),
    },
    { label: 'AVIF (this libvips reads it)', file: 'odd/photo.avif', expect: 'index', bytes: avif },
    { label: 'huge EXIF (a 60 KB description)', file: 'odd/huge-exif.jpg', expect: 'index', bytes: await sharp(jpeg).withExif({ IFD0: { ImageDescription: 'x'.repeat(60_000), Copyright: 'y'.repeat(2_000) } }).jpeg().toBuffer() },
    // names
    { label: 'file name with spaces', file: 'names/a photo with spaces.jpg', expect: 'index', bytes: jpeg },
    { label: 'file name in Unicode', file: 'names/日本語 ünïcödé 🙂.jpg', expect: 'index', bytes: jpeg },
    { label: 'file name with a newline', file: 'names/line\nbreak.jpg', expect: 'index', bytes: jpeg },
    // file-system cases
    { label: 'symlink loop (a.jpg → b.jpg → a.jpg)', file: 'fs/loop-a.jpg', expect: 'skip', reason: /loop-a\.jpg: symbolic link loop/ },
    { label: 'dangling symlink', file: 'fs/dangling.jpg', expect: 'skip', reason: /dangling\.jpg: broken symbolic link/ },
    { label: 'unreadable file (mode 000)', file: 'fs/unreadable.jpg', expect: 'skip', reason: /unreadable\.jpg: permission denied/, needsNonRoot: true },
    { label: 'unreadable folder (mode 000) holding an image', file: 'fs/locked/', expect: 'skip', reason: /cannot read folder .*fs\/locked: permission denied/, needsNonRoot: true },
  ];
  for (const c of cases) {
    if (!c.bytes) continue;
    mkdirSync(join(dir, c.file, '..'), { recursive: true });
    writeFileSync(join(dir, c.file), c.bytes);
  }
  const fs = join(dir, 'fs');
  mkdirSync(fs, { recursive: true });
  symlinkSync('loop-b.jpg', join(fs, 'loop-a.jpg'));
  symlinkSync('loop-a.jpg', join(fs, 'loop-b.jpg'));
  cases.push({ label: 'symlink loop, the other end', file: 'fs/loop-b.jpg', expect: 'skip', reason: /loop-b\.jpg: symbolic link loop/ });
  symlinkSync('gone.jpg', join(fs, 'dangling.jpg'));
  writeFileSync(join(fs, 'unreadable.jpg'), jpeg);
  chmodSync(join(fs, 'unreadable.jpg'), 0o000);
  mkdirSync(join(fs, 'locked'));
  writeFileSync(join(fs, 'locked', 'inside.jpg'), jpeg);
  chmodSync(join(fs, 'locked'), 0o000);
  return cases;
}
