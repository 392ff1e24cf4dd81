/**
 * An image query's upload: multipart/form-data with the file in the field `image` and the search
 * options as other fields (numbers as text, `where` as JSON text), validated by the same option
 * schema as a JSON body. The file is held in memory up to the upload limit, and its pixel count
 * is checked from its header before any pixel is decoded (src/data/image-loader.ts).
 */
import type { FastifyRequest } from 'fastify';
import { createError } from '../errors.js';
import { loadImage, type DecodedImage } from '../data/image-loader.js';
import { issueError } from '../search/options.js';
import { ApiError } from './errors.js';
import type { ServeLimits } from './limits.js';
import { optionsSchema, type ApiOptions } from './schemas.js';

const NUMBERS = new Set(['k', 'k1', 'offset', 'alpha', 'rrfK', 'mmr', 'budgetMs']);

export interface Upload {
  image: DecodedImage;
  options: ApiOptions;
}

/** Form fields → option values: numbers typed, `where` parsed, `explain` a boolean; anything else stays text for the schema to judge. */
export function formOptions(fields: Record<string, string>, limits: ServeLimits): ApiOptions {
  const raw: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) {
    if (NUMBERS.has(key)) raw[key] = /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(value.trim()) ? Number(value) : value;
    else if (key === 'explain') raw[key] = value === 'true' ? true : value === 'false' ? false : value;
    else if (key === 'where') {
      try {
        raw[key] = JSON.parse(value) as unknown;
      } catch {
        throw createError('BAD_ARGUMENT', 'where', 'is not valid JSON');
      }
    } else raw[key] = value;
  }
  const result = optionsSchema(limits).safeParse(raw);
  if (!result.success) throw issueError(result.error, (f) => f);
  return result.data;
}

export async function readUpload(request: FastifyRequest, limits: ServeLimits): Promise<Upload> {
  if (!request.isMultipart()) throw new ApiError(415, 'UNSUPPORTED_MEDIA_TYPE', 'send multipart/form-data with the image file in the field "image"', 'image');
  const fields: Record<string, string> = {};
  let bytes: Buffer | undefined;
  try {
    const parts = request.parts({ limits: { fileSize: limits.uploadLimitBytes, files: 1, fields: 24, fieldSize: 16 << 10, parts: 25 } });
    for await (const part of parts) {
      if (part.type === 'file') {
        if (part.fieldname !== 'image') {
          part.file.resume();
          throw new ApiError(400, 'BAD_ARGUMENT', `${part.fieldname}: unknown file field; send the image in the field "image"`, part.fieldname);
        }
        bytes = await part.toBuffer();
      } else fields[part.fieldname] = String(part.value);
    }
  } catch (error) {
    // the multipart parser's own errors (no boundary, a body that ends mid-part) are plain Errors
    // without a code: the body is malformed, not the server; limits (FST_…) and ours (ApiError,
    // DuoError: coded) pass through
    if (!(error instanceof Error) || 'code' in error) throw error;
    throw new ApiError(400, 'BAD_ARGUMENT', `body: malformed multipart/form-data (${(error as Error).message})`, 'body');
  }
  if (!bytes || bytes.length === 0) throw new ApiError(400, 'BAD_ARGUMENT', 'image: missing; send the image file in the field "image"', 'image');
  const options = formOptions(fields, limits);
  const image = await loadImage(bytes, { maxPixels: limits.maxImagePixels, name: 'the uploaded image' });
  return { image, options };
}
