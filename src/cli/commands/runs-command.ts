import type { Command } from 'commander';
import { join } from 'node:path';
import { createError } from '../../errors.js';
import { lineChartSpec, renderPng } from '../../report/chart.js';
import type { RankMetrics } from '../../eval/metrics.js';
import { exportRunToMlflow, resolveTrackingUri } from '../../train/mlflow.js';
import { bestEpoch, listRuns, readRun, type RunInfo } from '../../train/runs.js';
import type { CrossEpoch } from '../../train/train-cross.js';
import { formatTable } from '../output.js';

const f1 = (n: number | undefined) => (n === undefined ? '-' : n.toFixed(1));

function row(run: RunInfo) {
  const best = bestEpoch(run);
  const h = (run.params.hyper ?? {}) as Record<string, unknown>;
  return [
    run.id,
    String(h.head ?? '-'),
    `${run.metrics.length}${run.summary ? '' : ' (running or stopped)'}`,
    best ? String(best.epoch) : '-',
    f1(best?.dev.textToImage['R@1']),
    f1(best?.dev.textToImage['R@5']),
    f1(best?.dev.textToImage['R@10']),
    f1(best?.dev.imageToText['R@1']),
    f1(best?.dev.imageToText['R@5']),
    f1(best?.dev.imageToText['R@10']),
    f1(best?.dev.rsum),
  ];
}
const isCross = (run: RunInfo) => run.params.kind === 'cross-encoder';
const CROSS_HEADER = ['run', 'epochs', 'best', 'stage 1 R@1', 'R@10', 'replace R@1', 'R@10', 'weighted R@1', 'R@10', 'rrf R@1', 'R@10'];

function crossRow(run: RunInfo) {
  const lines = run.metrics as unknown as CrossEpoch[];
  const best = lines.reduce<CrossEpoch | undefined>((b, m) => (!b || m.score > b.score ? m : b), undefined);
  const pair = (m: RankMetrics | undefined) => [f1(m?.['R@1']), f1(m?.['R@10'])];
  return [run.id, String(lines.length), best ? String(best.epoch) : '-', ...pair(best?.dev.stage1), ...pair(best?.dev.replace), ...pair(best?.dev.weighted), ...pair(best?.dev.rrf)];
}

const HEADER = ['run', 'head', 'epochs', 'best', 't→i R@1', 'R@5', 'R@10', 'i→t R@1', 'R@5', 'R@10', 'rsum'];

export function registerRuns(program: Command): void {
  const runs = program.command('runs').description('list, show and compare training runs');
  runs
    .command('list')
    .option('--runs <dir>', 'where runs live', 'runs')
    .action((o: { runs: string }) => {
      const all = listRuns(o.runs);
      if (all.length === 0) return console.log(`no runs in ${o.runs}`);
      const cross = all.filter(isCross);
      const dual = all.filter((r) => !isCross(r));
      if (dual.length > 0) console.log(formatTable(HEADER, dual.map(row)));
      if (cross.length > 0) {
        console.log('\ncross-encoder runs (dev text→image, reranking the bi-encoder top k1):');
        console.log(formatTable(CROSS_HEADER, cross.map(crossRow)));
      }
    });
  runs
    .command('show')
    .argument('<run>', 'run name or folder')
    .option('--runs <dir>', 'where runs live', 'runs')
    .action((name: string, o: { runs: string }) => {
      const run = open(name, o.runs);
      console.log(JSON.stringify({ id: run.id, params: run.params, summary: run.summary }, null, 2));
      console.log(
        formatTable(
          ['epoch', 'loss', 'train acc', 'temp', 't→i R@1', 'R@5', 'R@10', 'i→t R@1', 'R@5', 'R@10', 'rsum', 's'],
          run.metrics.map((m) => [m.epoch, m.loss.toFixed(3), (100 * m.trainAccuracy).toFixed(1), m.temperature.toFixed(4), f1(m.dev.textToImage['R@1']), f1(m.dev.textToImage['R@5']), f1(m.dev.textToImage['R@10']), f1(m.dev.imageToText['R@1']), f1(m.dev.imageToText['R@5']), f1(m.dev.imageToText['R@10']), f1(m.dev.rsum), m.seconds.toFixed(1)]),
        ),
      );
    });
  runs
    .command('compare')
    .argument('<runs...>', 'run names or folders')
    .option('--runs <dir>', 'where runs live', 'runs')
    .option('--plot <png>', 'write learning curves (loss, dev t→i R@10, dev rsum) to this PNG')
    .action(async (names: string[], o: { runs: string; plot?: string }) => {
      const chosen = names.map((n) => open(n, o.runs));
      console.log(formatTable(HEADER, chosen.map(row)));
      if (o.plot) {
        const series = (pick: (m: RunInfo['metrics'][number]) => number) => chosen.map((r) => ({ name: r.id, points: r.metrics.map((m) => ({ x: m.epoch, y: pick(m) })) }));
        await renderPng(
          lineChartSpec('Learning curves', 'epoch', [
            { title: 'train loss', series: series((m) => m.loss) },
            { title: 'dev text→image R@10', series: series((m) => m.dev.textToImage['R@10']) },
            { title: 'dev R@1+5+10 both ways', series: series((m) => m.dev.rsum) },
          ]),
          o.plot,
        );
        console.log(`plot: ${o.plot}`);
      }
    });
  runs
    .command('export-mlflow')
    .description('write finished (or stopped) runs into an MLflow tracking store, so runs trained without --mlflow appear there too')
    .argument('<runs...>', 'run names or folders')
    .option('--runs <dir>', 'where runs live', 'runs')
    .option('--to <uri>', 'tracking server (http://host:5000) or file store (file:./mlruns or a folder); default: MLFLOW_TRACKING_URI, else mlruns/ beside --runs')
    .option('--experiment <name>', 'MLflow experiment (default: MLFLOW_EXPERIMENT_NAME, else duo-train, duo-train-cross or duo-train-head by the kind of run)')
    .option('--force', 'export again a run already exported to that store (a second MLflow run)')
    .action(async (names: string[], o: { runs: string; to?: string; experiment?: string; force?: boolean }) => {
      const uri = resolveTrackingUri(o.to ?? true, o.runs)!;
      for (const name of names) {
        const run = open(name, o.runs);
        const { link, status, skipped } = await exportRunToMlflow(run.dir, { uri, experiment: o.experiment, force: o.force });
        console.log(
          skipped
            ? `${run.id}: already in ${link.uri} as run ${link.runId} (experiment "${link.experiment}"); --force exports it again`
            : `${run.id} → ${link.uri}: run ${link.runId} in experiment "${link.experiment}" (${link.experimentId}), ${status}, ${run.metrics.length} epochs`,
        );
      }
      if (!/^https?:/i.test(uri)) console.log(`view: mlflow ui --backend-store-uri ${/^file:/i.test(uri) ? uri : `file:${uri}`}`);
    });
}

function open(name: string, root: string): RunInfo {
  try {
    return readRun(name.includes('/') ? name : join(root, name));
  } catch {
    throw createError('FILE_NOT_FOUND', name.includes('/') ? name : join(root, name, 'params.json'));
  }
}
