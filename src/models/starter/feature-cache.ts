/**
 * Backbone features cached on disk by image content hash (SHA-256 of the file bytes), so a
 * re-run, a second split or a renamed file never recomputes. One small file per image,
 * written atomically: a killed extraction resumes where it stopped.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadImage, type DecodedImage } from '../../data/image-loader.js';
import { writeFileAtomic } from '../../util/atomic-write.js';
import type { BackboneFeatures, BackboneRunner } from './backbone-runner.js';
import { GRID_SIZE, POOLED_DIM } from './backbone-runner.js';
import { MOBILENET_DIM } from './backbone.js';

export class FeatureCache {
  /** files hold pooled + grid, then MobileNetV2's vector when the backbone has one */
  private readonly floats: number;

  constructor(
    readonly dir: string,
    private readonly layout: { mobilenet: boolean } = { mobilenet: false },
  ) {
    mkdirSync(dir, { recursive: true });
    this.floats = POOLED_DIM + GRID_SIZE + (layout.mobilenet ? MOBILENET_DIM : 0);
  }

  static hash(bytes: Uint8Array): string {
    return createHash('sha256').update(bytes).digest('hex');
  }

  private path(hash: string): string {
    return join(this.dir, hash.slice(0, 2), `${hash}.f32`);
  }

  async get(hash: string): Promise<BackboneFeatures | undefined> {
    const p = this.path(hash);
    if (!existsSync(p)) return undefined;
    const buf = await readFile(p);
    if (buf.length !== this.floats * 4) return undefined; // a foreign or partial file: recompute
    const all = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
    const f: BackboneFeatures = { pooled: all.subarray(0, POOLED_DIM), grid: all.subarray(POOLED_DIM, POOLED_DIM + GRID_SIZE) };
    if (this.layout.mobilenet) f.mobilenet = all.subarray(POOLED_DIM + GRID_SIZE);
    return f;
  }

  async put(hash: string, f: BackboneFeatures): Promise<void> {
    if (this.layout.mobilenet !== Boolean(f.mobilenet)) throw new Error(`feature cache ${this.dir}: features ${f.mobilenet ? 'with' : 'without'} MobileNetV2 do not fit its layout`);
    const all = new Float32Array(this.floats);
    all.set(f.pooled);
    all.set(f.grid, POOLED_DIM);
    if (f.mobilenet) all.set(f.mobilenet, POOLED_DIM + GRID_SIZE);
    await writeFileAtomic(this.path(hash), new Uint8Array(all.buffer));
  }
}

/**
 * Features for every source (path or bytes), from the cache where present. Sources that fail
 * to decode come back as undefined with their error, never abort the batch.
 */
export async function extractFeatures(
  sources: (string | Uint8Array)[],
  runner: BackboneRunner,
  cache: FeatureCache,
  options: { batchSize?: number; onProgress?: (done: number, total: number) => void } = {},
): Promise<{ features: (BackboneFeatures | undefined)[]; errors: Map<number, string>; computed: number }> {
  const features: (BackboneFeatures | undefined)[] = new Array(sources.length);
  const errors = new Map<number, string>();
  const batchSize = options.batchSize ?? 8;
  let computed = 0;
  for (let start = 0; start < sources.length; start += batchSize) {
    const idx = Array.from({ length: Math.min(batchSize, sources.length - start) }, (_, i) => start + i);
    const todo: { i: number; hash: string; image: DecodedImage }[] = [];
    await Promise.all(
      idx.map(async (i) => {
        const src = sources[i]!;
        try {
          const bytes = typeof src === 'string' ? await readFile(src) : src;
          const hash = FeatureCache.hash(bytes);
          const hit = await cache.get(hash);
          if (hit) features[i] = hit;
          else todo.push({ i, hash, image: await loadImage(bytes, { name: typeof src === 'string' ? src : `#${i}` }) });
        } catch (error) {
          errors.set(i, (error as Error).message);
        }
      }),
    );
    if (todo.length > 0) {
      const out = await runner.run(todo.map((t) => t.image));
      await Promise.all(todo.map((t, j) => cache.put(t.hash, out[j]!)));
      todo.forEach((t, j) => (features[t.i] = out[j]!));
      computed += todo.length;
    }
    options.onProgress?.(Math.min(start + batchSize, sources.length), sources.length);
  }
  return { features, errors, computed };
}
