/**
 * The one decoding path for every image the engine sees, at index time and at query time:
 * sharp decodes JPEG/PNG/WebP (and whatever else libvips reads), applies the EXIF
 * orientation, flattens alpha onto white, and converts grey or CMYK to 8-bit sRGB.
 */
import { constants } from 'node:fs';
import { access, lstat, stat } from 'node:fs/promises';
import sharp from 'sharp';
import { createError, DuoError } from '../errors.js';

// An indexing job reads each file once, so libvips's operation cache would only hold memory
// (up to 50 MB by default) and keep file handles open.
sharp.cache(false);

export interface DecodedImage {
  /** interleaved RGB, row-major */
  data: Uint8ClampedArray;
  width: number;
  height: number;
  channels: 3;
  source: string;
  /**
   * What models computed from these pixels, keyed by the model part and a hash of its weights
   * (the starter backbone's features): two models that share a part, such as the starter
   * encoder and cross-encoder, run it once per image. Filled by the models; it lives and dies
   * with the image, so nothing outlives a query or is shared between images.
   */
  derived?: Map<string, Promise<unknown>>;
}

/** 64 megapixels: above any camera in common use, far below a decompression bomb's billions. */
export const DEFAULT_MAX_PIXELS = 64_000_000;

export interface LoadImageOptions {
  maxPixels?: number;
  /** a name for error messages when the input is bytes */
  name?: string;
}

export async function loadImage(input: string | Uint8Array, options: LoadImageOptions = {}): Promise<DecodedImage> {
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  const source = typeof input === 'string' ? input : (options.name ?? '<bytes>');
  try {
    // Header first: the pixel count is known before a single pixel is decoded. Reading a header
    // needs no pixel limit, and without one a 30000×30000 header is refused below as
    // IMAGE_TOO_LARGE with its pixel count rather than by sharp's own default limit (268 Mpx) as
    // a vague "exceeds pixel limit".
    const meta = await sharp(input, { limitInputPixels: false }).metadata();
    if (!meta.width || !meta.height) throw createError('BAD_IMAGE', source, 'no dimensions in header');
    const pixels = meta.width * meta.height;
    if (pixels > maxPixels) throw createError('IMAGE_TOO_LARGE', source, pixels, maxPixels);
    const { data, info } = await sharp(input, { limitInputPixels: maxPixels, failOn: 'error' })
      .rotate()
      .flatten({ background: { r: 255, g: 255, b: 255 } })
      .toColourspace('srgb')
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw createError('BAD_IMAGE', source, `decoded to ${info.channels} channels`);
    return {
      data: new Uint8ClampedArray(data.buffer, data.byteOffset, data.byteLength),
      width: info.width,
      height: info.height,
      channels: 3,
      source,
    };
  } catch (error) {
    if (error instanceof DuoError) throw error;
    // libvips says "unsupported image format" for a file it could not open at all: the file
    // system knows why better (a symlink loop, no permission, an empty file)
    const problem = typeof input === 'string' ? await fileProblem(input) : undefined;
    if (problem) throw problem;
    const message = error instanceof Error ? error.message : String(error);
    if (/input file is missing|no such file|ENOENT/i.test(message)) throw createError('FILE_NOT_FOUND', source);
    throw createError('BAD_IMAGE', source, vipsReason(message));
  }
}

/**
 * The first line of a libvips error that says what is wrong: a loader that seeks around a short
 * file (libheif) logs "source: bad seek to N", once per try, before the real cause ("Support for this
 * compression format has not been built in: HEVC").
 */
function vipsReason(message: string): string {
  const lines = message.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !/bad seek to \d+$/.test(l));
  return lines[0] ?? message;
}

/** What a file-system error code means for a path someone asked to read (also walk-images.ts); ENOENT as a symbolic link's. */
export const UNREADABLE: Record<string, string> = {
  ELOOP: 'symbolic link loop',
  ENOENT: 'broken symbolic link (its target is missing)',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
};

/** Why a path cannot be read as a file, if the file system says so; undefined when it can. */
async function fileProblem(path: string): Promise<DuoError | undefined> {
  try {
    const s = await stat(path);
    if (s.isDirectory()) return createError('BAD_IMAGE', path, 'is a folder, not a file');
    if (s.size === 0) return createError('BAD_IMAGE', path, 'the file is empty (0 bytes)');
    await access(path, constants.R_OK);
    return undefined;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? '';
    if (code === 'ENOENT') {
      const link = await lstat(path).catch(() => undefined);
      return link?.isSymbolicLink() ? createError('BAD_IMAGE', path, UNREADABLE.ENOENT!) : createError('FILE_NOT_FOUND', path);
    }
    return UNREADABLE[code] ? createError('BAD_IMAGE', path, UNREADABLE[code]) : undefined;
  }
}

export const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.webp', '.gif', '.tif', '.tiff', '.avif', '.heic']);
