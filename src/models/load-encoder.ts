/**
 * Model id or directory → Encoder (several, `a,b` or `a=0.7,b=0.3`: an ensemble,
 * ./ensemble-encoder.ts). The registry is an explicit table keyed by the
 * checkpoint's `model_type`, filled here rather than by import side effects.
 */
import { AutoConfig } from '@huggingface/transformers';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createError } from '../errors.js';
import { packageRoot } from '../util/package-root.js';
import { ClipEncoder, type ClipLoadOptions } from './clip/clip-encoder.js';
import { StarterEncoder } from './starter/starter-encoder.js';
import { EnsembleEncoder, parseEnsembleSpec, type EnsembleMember } from './ensemble-encoder.js';
import { HeadedEncoder } from './headed-encoder.js';
import type { Encoder } from './encoder.js';
import { explainLoadFailure, resolveModelSource, type ModelSource } from './model-source.js';

type Loader = (source: ModelSource, options: LoadEncoderOptions) => Promise<Encoder>;

const REGISTRY: Record<string, Loader> = {
  clip: (source, options) => ClipEncoder.load(source, 'clip', options),
  siglip: (source, options) => ClipEncoder.load(source, 'siglip', options),
  'duo-starter-pack': (source) => StarterEncoder.load(source),
};

export interface LoadEncoderOptions extends ClipLoadOptions {
  /** for hub ids: may files be downloaded (true unless set), or only read from the cache */
  allowRemote?: boolean;
  /** a folder written by `duo train-head`: projection heads applied on top of the model */
  head?: string;
}

/** The engine's default model: the project's starter pack, trained on Flickr8k, shipped in models/starter. */
export function defaultModelPath(): string {
  return join(packageRoot(), 'models', 'starter');
}

/** The generated colour-clip fixture: CLIP's file layout, colour words only; for tests and offline checks. */
export function fixtureModelPath(): string {
  return join(packageRoot(), 'models', 'colour-clip');
}

async function modelType(source: ModelSource): Promise<string> {
  if (source.kind === 'hub') {
    try {
      const config = await AutoConfig.from_pretrained(source.pretrainedPath, { local_files_only: !source.allowRemote });
      return String((config as unknown as { model_type?: string }).model_type ?? '');
    } catch (error) {
      throw explainLoadFailure(source, error);
    }
  }
  // the project's own packs carry a manifest.json instead of a transformers config.json
  const manifestPath = join(source.location, 'manifest.json');
  if (existsSync(manifestPath)) {
    try {
      return String((JSON.parse(await readFile(manifestPath, 'utf8')) as { format?: string }).format);
    } catch (error) {
      throw createError('MODEL_UNSUPPORTED', manifestPath, (error as Error).message);
    }
  }
  const path = join(source.location, 'config.json');
  let config: { model_type?: string };
  try {
    config = JSON.parse(await readFile(path, 'utf8')) as { model_type?: string };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw createError('MODEL_NOT_FOUND', source.location, 'config.json');
    throw createError('MODEL_UNSUPPORTED', path, (error as Error).message);
  }
  if (!config.model_type) throw createError('MODEL_UNSUPPORTED', path, 'no model_type field');
  return config.model_type;
}

export async function loadEncoder(spec: string = defaultModelPath(), options: LoadEncoderOptions = {}): Promise<Encoder> {
  const members = parseEnsembleSpec(spec);
  if (members) {
    if (options.head) throw createError('BAD_ARGUMENT', '--head', 'applies to one model, not to an ensemble (--model a,b)');
    const loaded: EnsembleMember[] = [];
    try {
      for (const m of members) loaded.push({ ...m, encoder: await loadEncoder(m.spec, options) });
    } catch (error) {
      for (const m of loaded) await m.encoder.dispose();
      throw error;
    }
    return new EnsembleEncoder(loaded);
  }
  const source = resolveModelSource(spec, options);
  const type = await modelType(source);
  const loader = REGISTRY[type];
  if (!loader) {
    throw createError('MODEL_UNSUPPORTED', source.location, `model_type "${type}" (known: ${Object.keys(REGISTRY).join(', ')})`);
  }
  const encoder = await loader(source, options);
  return options.head ? HeadedEncoder.wrap(encoder, options.head) : encoder;
}
