/**
 * `duo tune-fusion`: re-chooses a starter pack's weighted-fusion α per direction for the
 * bi-encoder the pack now holds. One hybrid evaluation through the engine (hybrid-eval.ts, both
 * directions, every α of the grid from the same stage-2 scores), then per direction the α with
 * the best R@1 + R@5 + R@10 (among those that keep R@1 above stage 1's at every k1 checked, when
 * any does), written into the pack's cross-encoder manifest
 * (`crossEncoder.fusion.alpha` for text→image, `alphaImageToText` for image→text) with a record
 * of how it was chosen. The cross-encoder's id leaves manifest.json out (starter-cross-encoder.ts),
 * so indexes that recorded it stay valid.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RetrievalDataset } from '../data/dataset.js';
import { createError } from '../errors.js';
import type { Encoder } from '../models/encoder.js';
import type { CrossEncoder } from '../models/reranker.js';
import type { CrossManifest } from '../models/starter/starter-cross-encoder.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { evaluateHybrid, type Direction } from './hybrid-eval.js';
import { ALPHA_TIE_RULE, chooseAlpha, recallSum, type RankMetrics } from './metrics.js';

export const DIRECTIONS: Direction[] = ['textToImage', 'imageToText'];
export const DEFAULT_ALPHAS = [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8];

export interface Recalls {
  'R@1': number;
  'R@5': number;
  'R@10': number;
  /** R@1 + R@5 + R@10 */
  rsum: number;
}

export interface TuneRow extends Recalls {
  alpha: number;
  direction: Direction;
  /** R@1 at each guard k1 (TuneFusionOptions.guardK1) with this α */
  guardR1?: Record<number, number>;
  /** whether R@1 is above stage 1's at k1 and at every guard k1 */
  aboveStage1: boolean;
}

export interface TuneFusionResult {
  manifest: string;
  dataset: string;
  split: string;
  k1: number;
  grid: number[];
  /** queries per direction */
  queries: Record<Direction, number>;
  stage1: Record<Direction, Recalls>;
  rows: TuneRow[];
  chosen: Record<Direction, number>;
  /** the other k1 whose R@1 the chosen α must keep above stage 1's */
  guardK1: number[];
  /** per direction, whether some α of the grid kept R@1 above stage 1 at every k1 (if none did, the choice ignores that) */
  guardMet: Record<Direction, boolean>;
  /** the α the manifest held before (per direction, as the engine read it), if any */
  previous?: Record<Direction, number>;
  written: boolean;
}

const recalls = (m: RankMetrics): Recalls => ({ 'R@1': m['R@1'], 'R@5': m['R@5'], 'R@10': m['R@10'], rsum: recallSum(m) });

interface PackManifest {
  crossEncoder?: CrossManifest;
  [key: string]: unknown;
}

/** The pack's manifest.json; a damaged one is MODEL_UNSUPPORTED naming it, not a bare SyntaxError. */
function readManifest(file: string): PackManifest {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as PackManifest;
  } catch (error) {
    throw createError('MODEL_UNSUPPORTED', file, `manifest.json is not JSON (${(error as Error).message})`);
  }
}

/** The pack's manifest file, refusing (naming --pack and the file) a folder without a cross-encoder. */
export function crossManifestFile(pack: string): string {
  const file = join(pack, 'manifest.json');
  if (!existsSync(file)) throw createError('FILE_NOT_FOUND', file);
  const manifest = readManifest(file);
  if (!manifest.crossEncoder?.heads?.length) throw createError('BAD_ARGUMENT', '--pack', `${pack} has no cross-encoder (${file} has no crossEncoder section); add one with duo export-cross`);
  const weights = join(pack, manifest.crossEncoder.file ?? 'cross_encoder.bin');
  if (!existsSync(weights)) throw createError('BAD_ARGUMENT', '--pack', `${pack} has no cross-encoder: ${weights} is missing`);
  return file;
}

export interface TuneFusionOptions {
  pack: string;
  k1: number;
  alphas: number[];
  dryRun: boolean;
  /** the command line, recorded in the manifest */
  command: string;
  maxQueries?: number;
  /**
   * Other k1 to check: an α is chosen only if R@1 stays above stage 1's at k1 and at each of these
   * (stage 2 should not make the first result worse at any candidate count a user picks), when
   * some α of the grid does so; among those, the best R@1 + R@5 + R@10 at k1.
   */
  guardK1?: number[];
  onProgress?: (stage: string, done: number, total: number) => void;
}

/** One direction's choice: chooseAlpha among the rows whose R@1 stays above stage 1's at every k1 checked, or among all when none does. */
export function pickAlpha(rows: Pick<TuneRow, 'alpha' | 'R@1' | 'rsum' | 'aboveStage1'>[]): { alpha: number; guardMet: boolean } {
  const kept = rows.filter((x) => x.aboveStage1);
  return { alpha: chooseAlpha(kept.length > 0 ? kept : rows), guardMet: kept.length > 0 };
}

/** Sweeps α with the pack's models over `ds` and, unless a dry run, writes the best per direction into the pack's manifest. */
export async function tuneFusion(ds: RetrievalDataset, encoder: Encoder, reranker: CrossEncoder, o: TuneFusionOptions): Promise<TuneFusionResult> {
  const file = crossManifestFile(o.pack);
  const grid = [...new Set(o.alphas)];
  const guardK1 = [...new Set(o.guardK1 ?? [])].filter((k) => k !== o.k1).sort((a, b) => a - b);
  const r = await evaluateHybrid(ds, encoder, reranker, { k1: [o.k1, ...guardK1], fusion: 'weighted', alpha: grid, directions: DIRECTIONS, maxQueries: o.maxQueries, onProgress: o.onProgress });
  const stage1 = { textToImage: recalls(r.stage1.textToImage!), imageToText: recalls(r.stage1.imageToText!) };
  const rows: TuneRow[] = [];
  for (const c of r.configs.filter((x) => x.k1 === o.k1)) {
    for (const direction of DIRECTIONS) {
      const alpha = c.alpha![direction];
      const guardR1 = Object.fromEntries(guardK1.map((k) => [k, r.configs.find((x) => x.k1 === k && x.alpha![direction] === alpha)![direction]!['R@1']]));
      const r1s = [c[direction]!['R@1'], ...Object.values(guardR1)];
      rows.push({ alpha, direction, ...recalls(c[direction]!), ...(guardK1.length > 0 ? { guardR1 } : {}), aboveStage1: r1s.every((x) => x > stage1[direction]['R@1']) });
    }
  }
  const picks = { textToImage: pickAlpha(rows.filter((x) => x.direction === 'textToImage')), imageToText: pickAlpha(rows.filter((x) => x.direction === 'imageToText')) };
  const chosen = { textToImage: picks.textToImage.alpha, imageToText: picks.imageToText.alpha };
  const guardMet = { textToImage: picks.textToImage.guardMet, imageToText: picks.imageToText.guardMet };
  const queries = { textToImage: r.stage1.textToImage!.queries, imageToText: r.stage1.imageToText!.queries };
  const result: TuneFusionResult = { manifest: file, dataset: ds.name, split: ds.split, k1: o.k1, grid, queries, stage1, rows, chosen, guardK1, guardMet, previous: reranker.fusionAlpha, written: false };
  if (o.dryRun) return result;

  // read again just before writing: the evaluation took minutes, and only the fusion entry is ours
  const manifest = readManifest(file);
  if (!manifest.crossEncoder) throw createError('BAD_ARGUMENT', '--pack', `${file} lost its crossEncoder section during the sweep`);
  const best = (d: Direction) => rows.find((row) => row.direction === d && row.alpha === chosen[d])!;
  const strip = ({ alpha: _a, direction: _d, aboveStage1: _s, ...m }: TuneRow) => m;
  manifest.crossEncoder.fusion = {
    mode: 'weighted',
    alpha: chosen.textToImage,
    alphaImageToText: chosen.imageToText,
    chosen: {
      by:
        `duo tune-fusion: per direction, the α of the grid with the best R@1 + R@5 + R@10 at k1 ${o.k1} (${ALPHA_TIE_RULE})` +
        (guardK1.length > 0 ? ` among those whose R@1 is above stage 1's at k1 ${[o.k1, ...guardK1].join(', ')} (when any is)` : ''),
      guardK1,
      guardMet,
      command: o.command,
      date: new Date().toISOString(),
      dataset: ds.name,
      split: ds.split,
      k1: o.k1,
      grid,
      biEncoder: encoder.id,
      crossEncoder: reranker.id,
      queries,
      stage1,
      hybrid: { textToImage: strip(best('textToImage')), imageToText: strip(best('imageToText')) },
    },
  };
  await writeFileAtomic(file, `${JSON.stringify(manifest, null, 2)}\n`);
  return { ...result, written: true };
}
