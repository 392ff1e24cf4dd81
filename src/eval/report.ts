/**
 * The evaluation report: stage 1, hybrid (each k1 × fusion) and the cross-encoder alone over
 * all candidates (on a subset of queries: the upper bound of reranking), in both directions,
 * on the same queries; written to a run folder as report.json (every number and the
 * configuration), report.md (the comparison tables), per-query.jsonl (which queries stage 2
 * fixed and which it broke) and charts made with Vega-Lite.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RetrievalDataset } from '../data/dataset.js';
import type { Encoder } from '../models/encoder.js';
import type { CrossEncoder } from '../models/reranker.js';
import { lineChartSpec, renderPng } from '../report/chart.js';
import type { FusionMode } from '../search/fusion.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { configKey, evaluateHybrid, type Direction, type HybridEvalResult, type QueryRecord } from './hybrid-eval.js';
import { recallAt, type FullMetrics } from './metrics.js';
import { formatDifference, formatInterval, INTERVAL_NOTE, recallDifference, type RecallDifference } from './bootstrap.js';

export interface ReportOptions {
  outDir: string;
  k1s: number[];
  fusions: FusionMode[];
  /** weighted fusion's α, both directions; unset: the cross-encoder's own per direction */
  alpha?: number;
  /** queries per direction for the cross-encoder over all candidates */
  ceSubset: number;
  maxQueries?: number;
  describe: Record<string, unknown>;
  onProgress?: (stage: string, done: number, total: number) => void;
}

const DIRECTIONS: Direction[] = ['textToImage', 'imageToText'];
const LABEL: Record<Direction, string> = { textToImage: 'text→image', imageToText: 'image→text' };
const CURVE_K = [1, 2, 3, 5, 10, 20, 50, 100];

export async function runReport(ds: RetrievalDataset, encoder: Encoder, reranker: CrossEncoder, o: ReportOptions): Promise<Record<string, unknown>> {
  mkdirSync(o.outDir, { recursive: true });
  const started = performance.now();
  const main = await evaluateHybrid(ds, encoder, reranker, { k1: o.k1s, fusion: o.fusions, alpha: o.alpha, maxQueries: o.maxQueries, onProgress: o.onProgress });
  const all = Math.max(ds.images.length, ds.captions.length);
  const ce = await evaluateHybrid(ds, encoder, reranker, { k1: all, fusion: 'replace', maxQueries: o.ceSubset, onProgress: o.onProgress });
  const seconds = (performance.now() - started) / 1000;
  const peakRssMiB = process.resourceUsage().maxRSS / 1024;

  const report = {
    ...o.describe,
    dataset: ds.name,
    split: ds.split,
    images: ds.images.length,
    captions: ds.captions.length,
    encoder: encoder.id,
    reranker: reranker.id,
    k1: o.k1s,
    k2: 'Recall@K for K = 1, 5, 10, 20 is the recall of a result list of k2 = K',
    fusions: o.fusions,
    alpha: main.alpha.textToImage,
    ...(main.alpha.imageToText !== main.alpha.textToImage ? { alphaImageToText: main.alpha.imageToText } : {}),
    stage1: main.stage1,
    hybrid: main.configs,
    crossEncoderOnly: { queriesPerDirection: o.ceSubset, candidates: 'all', stage1OnTheSameQueries: ce.stage1, crossEncoder: ce.configs[0] },
    latencyMs: main.latencyMs,
    peakRssMiB,
    seconds,
    finishedAt: new Date().toISOString(),
  };
  await writeFileAtomic(join(o.outDir, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
  await writeFileAtomic(join(o.outDir, 'per-query.jsonl'), main.queries.map((q) => JSON.stringify(q)).join('\n') + '\n');
  await writeFileAtomic(join(o.outDir, 'report.md'), markdown(report, main, ce, o));
  await charts(main, ce, o);
  return report;
}

const f = (x: number | undefined, d = 2) => (x === undefined ? '–' : Number.isFinite(x) ? x.toFixed(d) : '∞');

function metricsTable(rows: [string, FullMetrics | undefined][]): string {
  const head = '| mode | R@1 | R@5 | R@10 | R@10 95% | R@20 | MRR | mAP | P@1 | P@5 | P@10 | median rank |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |';
  const body = rows
    .filter(([, m]) => m)
    .map(([label, m]) => `| ${label} | ${f(m!['R@1'])} | ${f(m!['R@5'])} | ${f(m!['R@10'])} | ${formatInterval(m!.interval95?.['R@10'])} | ${f(m!['R@20'])} | ${f(m!.MRR, 4)} | ${f(m!.mAP, 4)} | ${f(m!['P@1'])} | ${f(m!['P@5'])} | ${f(m!['P@10'])} | ${f(m!.medianRank, 1)} |`);
  return [head, ...body].join('\n');
}

/** Queries whose first relevant item entered the top K with stage 2 (fixed) or left it (broken). */
export function changes(queries: QueryRecord[], key: string, k: number) {
  const fixed = queries.filter((q) => q.stage1 > k && (q.hybrid[key] ?? Infinity) <= k);
  const broken = queries.filter((q) => q.stage1 <= k && (q.hybrid[key] ?? Infinity) > k);
  return { fixed, broken };
}

function bestConfig(main: HybridEvalResult): string {
  const best = [...main.configs].sort((a, b) => (b.textToImage?.['R@1'] ?? 0) - (a.textToImage?.['R@1'] ?? 0))[0]!;
  return configKey(best.k1, best.fusion);
}

function markdown(report: Record<string, unknown>, main: HybridEvalResult, ce: HybridEvalResult, o: ReportOptions): string {
  const lines: string[] = [];
  lines.push(`# Evaluation report: ${report.dataset} ${report.split}`, '');
  lines.push(`${report.images} images, ${report.captions} captions. Encoder \`${report.encoder}\`, cross-encoder \`${report.reranker}\`.`);
  lines.push(`Command: \`${(report as { command?: string }).command ?? ''}\`${(report as { commit?: string }).commit ? ` at commit \`${(report as { commit?: string }).commit}\`` : ''}.`, '');
  lines.push('Hybrid: the bi-encoder\'s top k1 are rescored by the cross-encoder and reordered by the fusion; below k1 the stage-1 order stays. Recall@K is also the recall of a result list of k2 = K. Stage-1 ties count against the query; equal fused scores keep their stage-1 order, as the engine orders them.', '');
  for (const dir of DIRECTIONS) {
    if (!main.stage1[dir]) continue;
    lines.push(`## ${LABEL[dir]}`, '');
    lines.push(metricsTable([['stage 1', main.stage1[dir]], ...main.configs.map((c) => [`hybrid ${configKey(c.k1, c.fusion)}`, c[dir]] as [string, FullMetrics | undefined])]), '');
    lines.push('| hybrid minus stage 1, paired 95% | R@1 | R@10 |', '| --- | --- | --- |');
    for (const c of main.configs) lines.push(`| ${configKey(c.k1, c.fusion)} | ${formatDifference(c.vsStage1[dir]?.['R@1'])} | ${formatDifference(c.vsStage1[dir]?.['R@10'])} |`);
    lines.push('');
  }
  lines.push(`${INTERVAL_NOTE}.`, '');
  lines.push(`## Cross-encoder alone over all candidates (first ${o.ceSubset} queries per direction)`, '');
  for (const dir of DIRECTIONS) {
    if (!ce.stage1[dir]) continue;
    lines.push(`### ${LABEL[dir]}`, '', metricsTable([['stage 1, same queries', ce.stage1[dir]], ['cross-encoder alone', ce.configs[0]![dir]]]), '');
  }
  const l = main.latencyMs;
  lines.push('## Latency per query (ms)', '', '| stage | mean | p50 | p95 | p99 |', '| --- | --- | --- | --- | --- |');
  for (const [name, s] of [['stage 1 (exact search over the split)', l.stage1], [`stage 2 (k1 = ${Math.max(...o.k1s)})`, l.stage2], ['total', l.total]] as const) {
    lines.push(`| ${name} | ${f(s.mean)} | ${f(s.p50)} | ${f(s.p95)} | ${f(s.p99)} |`);
  }
  lines.push('', `Peak memory (resident): ${f(report.peakRssMiB as number, 0)} MiB. Wall time: ${f(report.seconds as number, 0)} s.`, '');
  const key = bestConfig(main);
  lines.push(`## What stage 2 changed (${key}, text→image)`, '');
  for (const k of [1, 10]) {
    const { fixed, broken } = changes(main.queries.filter((q) => q.direction === 'textToImage'), key, k);
    lines.push(`At K = ${k}: fixed ${fixed.length} queries, broke ${broken.length}.`, '');
    for (const [label, list] of [['fixed', fixed], ['broken', broken]] as const) {
      if (list.length === 0) continue;
      lines.push(`| ${label} | caption | image | stage-1 rank | hybrid rank |`, '| --- | --- | --- | --- | --- |');
      for (const q of list.slice(0, 8)) lines.push(`| | ${q.query.replace(/\|/g, '\\|')} | ${q.relevant.join(', ')} | ${q.stage1} | ${q.hybrid[key]} |`);
      lines.push('');
    }
  }
  lines.push('Every query is in `per-query.jsonl`.', '', '## Charts', '', '![Recall@K](recall-at-k.png)', '', '![Recall vs k1](recall-vs-k1.png)', '', '![Latency](latency.png)', '');
  return lines.join('\n');
}

async function charts(main: HybridEvalResult, ce: HybridEvalResult, o: ReportOptions): Promise<void> {
  const curve = (ranks: number[]) => CURVE_K.map((k) => ({ x: k, y: recallAt(ranks, k) }));
  const panels = DIRECTIONS.filter((d) => main.stage1[d]).map((dir) => {
    const qs = main.queries.filter((q) => q.direction === dir);
    const k1 = o.k1s[Math.floor(o.k1s.length / 2)]!;
    return {
      title: LABEL[dir],
      series: [
        { name: 'stage 1', points: curve(qs.map((q) => q.stage1)) },
        ...o.fusions.map((fu) => ({ name: `hybrid ${configKey(k1, fu)}`, points: curve(qs.map((q) => q.hybrid[configKey(k1, fu)]!)) })),
        { name: `cross-encoder alone (${o.ceSubset} queries)`, points: curve(ce.queries.filter((q) => q.direction === dir).map((q) => q.hybrid[configKey(Math.max(ce.configs[0]!.k1), 'replace')]!)) },
      ],
    };
  });
  await renderPng(lineChartSpec('Recall@K by mode', 'K (log scale)', panels, { logX: true }), join(o.outDir, 'recall-at-k.png'));
  const byK1 = (metric: 'R@1' | 'R@10') => ({
    title: `text→image ${metric}`,
    series: [
      { name: 'stage 1', points: o.k1s.map((k1) => ({ x: k1, y: main.stage1.textToImage?.[metric] ?? 0 })) },
      ...o.fusions.map((fu) => ({ name: fu, points: o.k1s.map((k1) => ({ x: k1, y: main.configs.find((c) => c.k1 === k1 && c.fusion === fu)?.textToImage?.[metric] ?? 0 })) })),
    ],
  });
  await renderPng(lineChartSpec('Recall vs k1', 'k1', [byK1('R@1'), byK1('R@10')]), join(o.outDir, 'recall-vs-k1.png'));
  const values = [
    ...main.latencySamples.stage1.map((ms) => ({ stage: 'stage 1', ms })),
    ...main.latencySamples.stage2.map((ms) => ({ stage: `stage 2 (k1 ${Math.max(...o.k1s)})`, ms })),
  ];
  await renderPng(
    {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      title: 'Latency per query',
      data: { values },
      facet: { column: { field: 'stage', type: 'nominal', title: null } },
      resolve: { scale: { x: 'independent' } },
      spec: {
        width: 300,
        height: 200,
        mark: 'bar',
        encoding: {
          x: { field: 'ms', type: 'quantitative', bin: { maxbins: 40 }, title: 'ms' },
          y: { aggregate: 'count', type: 'quantitative', title: 'queries' },
        },
      },
    },
    join(o.outDir, 'latency.png'),
  );
}

/** One row of `duo eval --compare`: b − a, with the paired 95% interval of the difference where both runs' per-query records line up. */
export interface ComparisonRow {
  mode: string;
  direction: string;
  metric: string;
  a: number;
  b: number;
  delta: number;
  interval?: [number, number];
}

/** The mode names of a report (report.json's rows and per-query.jsonl's keys alike): "stage 1" and "hybrid k1=… fusion". */
const modeOfConfig = (key: string) => `hybrid ${key}`;

/**
 * Per mode and direction, b's recall minus a's with its paired 95% interval, from two runs' per-query
 * records (per-query.jsonl). Pairs need the same queries in the same order, which two reports on the
 * same split have; otherwise this throws, naming the first query where they part.
 */
export function pairedDifferences(a: QueryRecord[], b: QueryRecord[]): Map<string, RecallDifference> {
  if (a.length === 0) throw new Error('no per-query records');
  if (a.length !== b.length) throw new Error(`the two runs ranked ${a.length} and ${b.length} queries`);
  a.forEach((q, i) => {
    if (q.direction !== b[i]!.direction || q.query !== b[i]!.query) throw new Error(`the two runs' query ${i + 1} differs: "${q.query}" and "${b[i]!.query}"`);
  });
  // the configs both runs ranked every query under (a report ranks each query under all of its configs)
  const shared = Object.keys(a[0]!.hybrid).filter((k) => k in b[0]!.hybrid);
  [a, b].forEach((run) =>
    run.forEach((q, i) => {
      const missing = shared.find((k) => !(k in q.hybrid));
      if (missing) throw new Error(`query ${i + 1} ("${q.query}") has no rank under ${missing}`);
    }),
  );
  const out = new Map<string, RecallDifference>();
  const keys = ['stage 1', ...shared.map(modeOfConfig)];
  for (const dir of DIRECTIONS) {
    const idx = a.flatMap((q, i) => (q.direction === dir ? [i] : []));
    if (idx.length === 0) continue;
    // the resampled unit is the image: a caption query's own image, or the image that is the query
    const units = idx.map((i) => (dir === 'textToImage' ? a[i]!.relevant[0]! : a[i]!.query));
    for (const mode of keys) {
      const rank = (q: QueryRecord) => (mode === 'stage 1' ? q.stage1 : q.hybrid[mode.slice('hybrid '.length)]!);
      out.set(`${mode}|${dir}`, recallDifference(idx.map((i) => rank(b[i]!)), idx.map((i) => rank(a[i]!)), units));
    }
  }
  return out;
}

/** Reads a run's per-query.jsonl as runReport writes it: JSON has no Infinity, so a query whose relevant item was never ranked was written as null. */
export function readQueryRecords(file: string): QueryRecord[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l, (_k, v) => (v === null ? Infinity : v)) as QueryRecord);
}

/** `eval --compare a b`: every metric of b minus a, per mode and direction; each recall's paired interval from `paired` (pairedDifferences) when given, which must give the reports' own differences. */
export function compareReports(a: Record<string, unknown>, b: Record<string, unknown>, paired?: Map<string, RecallDifference>): ComparisonRow[] {
  const rows: ComparisonRow[] = [];
  const modes = (r: Record<string, unknown>) => {
    const out = new Map<string, Record<string, FullMetrics | undefined>>();
    out.set('stage 1', r.stage1 as Record<string, FullMetrics>);
    for (const c of (r.hybrid as { k1: number; fusion: FusionMode; textToImage?: FullMetrics; imageToText?: FullMetrics }[]) ?? []) {
      out.set(modeOfConfig(configKey(c.k1, c.fusion)), c as unknown as Record<string, FullMetrics>);
    }
    return out;
  };
  const ma = modes(a);
  const mb = modes(b);
  for (const [mode, xa] of ma) {
    const xb = mb.get(mode);
    if (!xb) continue;
    for (const dir of DIRECTIONS) {
      const pa = xa[dir];
      const pb = xb[dir];
      if (!pa || !pb) continue;
      const diff = paired?.get(`${mode}|${dir}`);
      for (const metric of ['R@1', 'R@5', 'R@10', 'MRR', 'mAP'] as const) {
        if (diff && metric !== 'MRR' && metric !== 'mAP' && Math.abs(diff[metric].diff - (pb[metric] - pa[metric])) > 1e-6) {
          throw new Error(`the per-query records give ${mode} ${LABEL[dir]} ${metric} b − a = ${diff[metric].diff.toFixed(4)}, the reports ${(pb[metric] - pa[metric]).toFixed(4)}: they are not these reports' records`);
        }
        const interval = metric === 'MRR' || metric === 'mAP' ? undefined : diff?.[metric].interval;
        rows.push({ mode, direction: LABEL[dir], metric, a: pa[metric], b: pb[metric], delta: pb[metric] - pa[metric], ...(interval ? { interval } : {}) });
      }
    }
  }
  return rows;
}
