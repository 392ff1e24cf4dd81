/**
 * Run tracking: every training run owns a folder under `runs/` with its parameters
 * (params.json), one line of metrics per epoch (metrics.jsonl), its checkpoint, its best
 * weights and, when done, summary.json. `duo runs` lists, shows and compares them.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createError } from '../errors.js';
import type { RankMetrics } from '../eval/metrics.js';
import { writeFileAtomic } from '../util/atomic-write.js';

export interface EpochMetrics {
  epoch: number;
  step: number;
  loss: number;
  trainAccuracy: number;
  lr: number;
  temperature: number;
  dev: { textToImage: RankMetrics; imageToText: RankMetrics; rsum: number };
  seconds: number;
}

export interface RunInfo {
  id: string;
  dir: string;
  params: Record<string, unknown>;
  metrics: EpochMetrics[];
  summary?: Record<string, unknown>;
}

export const writeJson = (path: string, value: unknown) => writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);

export async function appendMetrics(dir: string, m: EpochMetrics): Promise<void> {
  await appendFile(join(dir, 'metrics.jsonl'), `${JSON.stringify(m)}\n`);
}

export function readRun(dir: string): RunInfo {
  const paramsPath = join(dir, 'params.json');
  if (!existsSync(paramsPath)) throw createError('FILE_NOT_FOUND', paramsPath);
  const metricsPath = join(dir, 'metrics.jsonl');
  const metrics = existsSync(metricsPath)
    ? readFileSync(metricsPath, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as EpochMetrics)
    : [];
  const summaryPath = join(dir, 'summary.json');
  return {
    id: dir.split('/').filter(Boolean).pop()!,
    dir,
    params: JSON.parse(readFileSync(paramsPath, 'utf8')) as Record<string, unknown>,
    metrics,
    summary: existsSync(summaryPath) ? (JSON.parse(readFileSync(summaryPath, 'utf8')) as Record<string, unknown>) : undefined,
  };
}

export function listRuns(root: string): RunInfo[] {
  if (!existsSync(root)) return [];
  return readdirSync(root, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(root, d.name, 'params.json')))
    .map((d) => readRun(join(root, d.name)))
    .sort((a, b) => (a.id < b.id ? -1 : 1));
}

export function bestEpoch(run: RunInfo): EpochMetrics | undefined {
  return run.metrics.reduce<EpochMetrics | undefined>((best, m) => (!best || m.dev.rsum > best.dev.rsum ? m : best), undefined);
}
