/** Directory → cross-encoder, by what the folder holds (an explicit table, as for encoders). */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createError } from '../errors.js';
import { BlipItmReranker, type BlipOptions } from './blip/blip-itm.js';
import { resolveModelSource } from './model-source.js';
import { StarterCrossEncoder } from './starter/starter-cross-encoder.js';
import type { CrossEncoder } from './reranker.js';

const REGISTRY: Record<string, (dir: string, options: BlipOptions) => Promise<CrossEncoder>> = {
  'blip-itm': (dir, options) => BlipItmReranker.load(dir, options),
};

export async function loadReranker(spec: string, options: BlipOptions = {}): Promise<CrossEncoder> {
  const { location } = resolveModelSource(spec);
  // the project's starter pack carries its cross-encoder beside the bi-encoder
  if (existsSync(join(location, 'manifest.json')) && existsSync(join(location, 'cross_encoder.bin'))) return StarterCrossEncoder.load(location);
  const configPath = join(location, 'config.json');
  if (!existsSync(configPath)) throw createError('MODEL_NOT_FOUND', location, 'config.json');
  const type = String((JSON.parse(readFileSync(configPath, 'utf8')) as { model_type?: string }).model_type);
  const loader = REGISTRY[type];
  if (!loader) throw createError('MODEL_UNSUPPORTED', location, `cross-encoder model_type "${type}" (known: ${Object.keys(REGISTRY).join(', ')})`);
  return loader(location, options);
}
