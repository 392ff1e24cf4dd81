import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { promisify } from 'node:util';
import sharp from 'sharp';
import type { RetrievalDataset } from '../src/data/dataset.js';
import type { Encoder } from '../src/models/encoder.js';
import { packageRoot } from '../src/util/package-root.js';

/** A temporary directory removed when the test file ends. */
export function tempDir(prefix = 'duo-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export const COLOURS: Record<string, [number, number, number]> = {
  red: [220, 20, 30],
  green: [30, 200, 40],
  blue: [20, 40, 220],
  yellow: [230, 220, 30],
  white: [250, 250, 250],
  black: [5, 5, 5],
};

/** A solid-colour image with a little noise, so encoders see a real photo-like file. */
export async function writeColourImage(path: string, rgb: [number, number, number], format: 'jpeg' | 'png' | 'webp' = 'jpeg', size = 64): Promise<void> {
  const data = Buffer.alloc(size * size * 3);
  for (let i = 0; i < size * size; i++) {
    for (let c = 0; c < 3; c++) data[i * 3 + c] = Math.max(0, Math.min(255, rgb[c]! + ((i * 7 + c * 13) % 11) - 5));
  }
  await sharp(data, { raw: { width: size, height: size, channels: 3 } }).toFormat(format).toFile(path);
}

/** One solid-colour image per colour, each with two colour captions: a dataset every colour fixture can ace. */
export async function colourDataset(captions: (colour: string) => string[] = (n) => [`a ${n} square`, `something ${n}`]): Promise<RetrievalDataset> {
  const dir = tempDir();
  const names = Object.keys(COLOURS);
  await Promise.all(names.map((n) => writeColourImage(join(dir, `${n}.jpg`), COLOURS[n]!)));
  return {
    name: 'colours',
    split: 'all',
    images: names.map((n) => ({ id: `${n}.jpg`, source: join(dir, `${n}.jpg`) })),
    captions: names.flatMap((n) => captions(n).map((text) => ({ imageId: `${n}.jpg`, text }))),
  };
}

/** Runs the compiled `duo` command (bin/duo.js → dist/) and returns its exit status and output. */
export async function runDuo(args: string[], cwd = packageRoot()): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [join(packageRoot(), 'bin', 'duo.js'), ...args], { cwd });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** An encoder as a plain object delegating to `inner`, with some members replaced (counting, vocabulary checks…). */
export function wrapEncoder(inner: Encoder, extra: Partial<Encoder> = {}): Encoder {
  return {
    id: inner.id,
    dim: inner.dim,
    normalized: inner.normalized,
    similarity: inner.similarity,
    encodeTexts: (t, o) => inner.encodeTexts(t, o),
    encodeImages: (i, o) => inner.encodeImages(i, o),
    dispose: async () => {},
    ...extra,
  };
}
