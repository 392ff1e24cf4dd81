import type { Command } from 'commander';
import { openDataset } from '../../data/readers/open-dataset.js';
import { formatDifference, formatInterval, formatSigned, formatSignedInterval, INTERVAL_NOTE, type RecallDifference } from '../../eval/bootstrap.js';
import { compareReports, pairedDifferences, readQueryRecords, runReport } from '../../eval/report.js';
import { evaluateRetrieval, type RetrievalEvalResult } from '../../eval/retrieval-eval.js';
import type { RankMetrics } from '../../eval/metrics.js';
import { defaultModelPath, loadEncoder } from '../../models/load-encoder.js';
import { loadReranker } from '../../models/load-reranker.js';
import { evaluateHybrid } from '../../eval/hybrid-eval.js';
import { expandWeights, flagOf, parseAlphaList, parseSearchOptions } from '../../search/options.js';
import { expansionTableFile, loadExpansionTable } from '../../search/expansion-table.js';
import { embedExpanded } from '../../search/query-expansion.js';
import { packageRoot } from '../../util/package-root.js';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { createError } from '../../errors.js';
import { writeFileAtomic } from '../../util/atomic-write.js';
import { formatTable, positiveInt, progressBar } from '../output.js';
import { evalEnsembleWeights } from './eval-ensemble.js';

interface EvalOptions {
  data?: string;
  split?: string;
  report?: string;
  ceSubset: number;
  compare?: string[];
  model: string;
  head?: string;
  images?: string;
  limit?: number;
  mode: string;
  k1: string;
  fusion: string;
  alpha?: string;
  reranker?: string;
  maxQueries?: number;
  directions: string;
  json?: boolean;
  save?: string;
  ensembleWeights?: string;
  expand?: boolean;
  expandSynonym?: string;
  expandHypernym?: string;
  expandCaption?: string;
}

const publicMetrics = (m: RankMetrics) => ({ 'R@1': m['R@1'], 'R@5': m['R@5'], 'R@10': m['R@10'], MRR: m.MRR, medianRank: m.medianRank, ...(m.interval95 ? { interval95: m.interval95 } : {}) });

export function evalJson(r: RetrievalEvalResult) {
  return {
    dataset: r.dataset,
    split: r.split,
    model: r.model,
    images: r.images,
    captions: r.captions,
    textToImage: publicMetrics(r.textToImage),
    imageToText: publicMetrics(r.imageToText),
    seconds: r.seconds,
  };
}

type Public = ReturnType<typeof publicMetrics>;

function gitCommit(): string | undefined {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: packageRoot(), encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

/** A report given as its folder or its report.json: the report, and its per-query records when they are beside it. */
function reportFiles(path: string): { report: string; perQuery?: string } {
  if (!path.endsWith('.json')) return { report: join(path, 'report.json'), perQuery: join(path, 'per-query.jsonl') };
  // only a file named report.json is a run folder's: another JSON file's folder may hold another run's records
  return { report: path, ...(basename(path) === 'report.json' ? { perQuery: join(dirname(path), 'per-query.jsonl') } : {}) };
}

function readReport(file: string): Record<string, unknown> {
  if (!existsSync(file)) throw createError('FILE_NOT_FOUND', file);
  return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
}

/** Both runs' per-query records paired, or why not (said on the console: a comparison without intervals is still a comparison). */
function pairedOf(runs: { report: string; perQuery?: string }[]): { paired?: Map<string, RecallDifference>; why?: string } {
  const unpaired = runs.find((r) => !r.perQuery);
  if (unpaired) return { why: `${unpaired.report} is not named report.json, so no per-query.jsonl is read for it` };
  const files = runs.map((r) => r.perQuery!);
  const missing = files.find((f) => !existsSync(f));
  if (missing) return { why: `no ${missing}` };
  try {
    return { paired: pairedDifferences(readQueryRecords(files[0]!), readQueryRecords(files[1]!)) };
  } catch (error) {
    return { why: `${files[0]} and ${files[1]}: ${(error as Error).message}` };
  }
}

function compare(paths: string[]): void {
  if (paths.length !== 2) throw createError('BAD_ARGUMENT', '--compare', `takes two report folders, got ${paths.length}`);
  const runs = paths.map(reportFiles);
  const [a, b] = runs.map((r) => readReport(r.report)) as [Record<string, unknown>, Record<string, unknown>];
  let { paired, why } = pairedOf(runs);
  let rows;
  try {
    rows = compareReports(a, b, paired);
  } catch (error) {
    [paired, why, rows] = [undefined, (error as Error).message, compareReports(a, b)];
  }
  console.log(`b = ${paths[1]} minus a = ${paths[0]}`);
  console.log(
    formatTable(
      ['mode', 'direction', 'metric', 'a', 'b', 'b − a', 'b − a 95%'],
      rows.map((r) => [r.mode, r.direction, r.metric, r.a.toFixed(4), r.b.toFixed(4), formatSigned(r.delta, 4), r.interval ? formatSignedInterval(r.interval) : '–']),
    ),
  );
  console.log(paired ? INTERVAL_NOTE : `no intervals: ${why}`);
}

function parseDirections(list: string): ('textToImage' | 'imageToText')[] {
  const parts = list.split(',').map((s) => s.trim());
  for (const p of parts) if (p !== 'textToImage' && p !== 'imageToText') throw createError('BAD_ARGUMENT', '--directions', `unknown direction "${p}" (textToImage, imageToText)`);
  return parts as ('textToImage' | 'imageToText')[];
}

function printMetrics(t2i: Public | undefined, i2t: Public | undefined): void {
  const row = (name: string, m: Public) => [name, m['R@1'].toFixed(2), m['R@5'].toFixed(2), m['R@10'].toFixed(2), formatInterval(m.interval95?.['R@10']), m.MRR.toFixed(4), m.medianRank];
  const rows = [...(t2i ? [row('text→image', t2i)] : []), ...(i2t ? [row('image→text', i2t)] : [])];
  console.log(formatTable(['direction', 'R@1', 'R@5', 'R@10', 'R@10 95%', 'MRR', 'median rank'], rows));
  console.log(INTERVAL_NOTE);
}

export function registerEval(program: Command): void {
  program
    .command('eval')
    .description('text→image and image→text retrieval metrics on a dataset split')
    .option('--data <path>', 'Flickr8k folder, Flickr30k results.csv, Karpathy dataset_*.json, or parquet file/folder')
    .option('--split <name>', 'split to evaluate (dev, test, …)')
    .option('--report <dir>', 'the full comparison (stage 1, hybrid sweeps, cross-encoder alone) written to this run folder')
    .option('--ce-subset <n>', 'report: queries per direction for the cross-encoder over all candidates', positiveInt('--ce-subset'), 100)
    .option('--compare <runs...>', 'print the difference between two report folders (or report.json files)')
    .option('--model <idOrDir>', 'Hugging Face model id or local model directory', defaultModelPath())
    .option('--head <dir>', 'projection heads from duo train-head on top of --model')
    .option('--images <dir>', 'image folder for CSV and Karpathy JSON datasets')
    .option('--limit <n>', 'evaluate only the first N images of the split (and their captions)', positiveInt('--limit'))
    .option('--mode <mode>', 'stage1 (bi-encoder alone) or hybrid (stage 2 reranks the top k1)', 'stage1')
    .option('--k1 <list>', 'candidates stage 2 reranks; a comma list sweeps (e.g. 50,100,200)', '100')
    .option('--fusion <list>', 'replace, weighted or rrf; a comma list compares them', 'weighted')
    .option('--alpha <list>', 'weight of stage 2 in weighted fusion, both directions (default: the α per direction the cross-encoder was chosen with, else 0.5); a comma list sweeps (e.g. 0.3,0.5,0.7), one row per α, from the same stage-2 scores')
    .option('--reranker <dir>', 'cross-encoder folder (default: the starter pack)')
    .option('--directions <list>', 'hybrid: textToImage, imageToText or both (comma-separated)', 'textToImage,imageToText')
    .option('--max-queries <n>', 'hybrid: evaluate text→image on the first N captions only', positiveInt('--max-queries'))
    .option('--ensemble-weights <list>', "with --model a,b: the first model's share of standardised similarity to try (e.g. 0.3,0.5,0.7); prints each and the best --model spec")
    .option('--expand', 'query expansion on the text queries, as search --expand runs it')
    .option('--no-expand', 'no query expansion')
    .option('--expand-synonym <w>', 'with --expand: weight of the synonym rewrites')
    .option('--expand-hypernym <w>', 'with --expand: weight of the hypernym rewrites')
    .option('--expand-caption <w>', 'with --expand: weight of the caption-style rewrites')
    .option('--json', 'print one JSON object')
    .option('--save <file>', 'also write the JSON to this file')
    .action(async (opts: EvalOptions) => {
      if (opts.compare) return compare(opts.compare);
      if (!opts.data) throw createError('BAD_ARGUMENT', '--data', 'required');
      if (!opts.split) throw createError('BAD_ARGUMENT', '--split', 'required');
      let ds = await openDataset(opts.data, { split: opts.split, imagesDir: opts.images });
      if (opts.limit && opts.limit < ds.images.length) {
        const keep = new Set(ds.images.slice(0, opts.limit).map((i) => i.id));
        ds = { ...ds, images: ds.images.filter((i) => keep.has(i.id)), captions: ds.captions.filter((c) => keep.has(c.imageId)) };
      }
      if (opts.mode !== 'stage1' && opts.mode !== 'hybrid') throw createError('BAD_ARGUMENT', '--mode', `must be stage1 or hybrid, got "${opts.mode}"`);
      // every value of a sweep is checked by the engine's own option schema, under the flag's name
      const fusions = opts.fusion.split(',').map((f) => parseSearchOptions({ fusion: f.trim() }, flagOf).fusion);
      const k1s = opts.k1.split(',').map((k) => parseSearchOptions({ k1: Number(k.trim()) }, flagOf).k1);
      const alphas = opts.alpha === undefined ? undefined : parseAlphaList('--alpha', opts.alpha);
      const alphaFlag = alphas?.length === 1 ? alphas[0] : undefined;
      if (alphas && alphas.length > 1 && (opts.mode !== 'hybrid' || opts.report)) throw createError('BAD_ARGUMENT', '--alpha', 'a list sweeps α in --mode hybrid only (not with --report)');
      if (opts.ensembleWeights) return evalEnsembleWeights(ds, { model: opts.model, ensembleWeights: opts.ensembleWeights, json: opts.json, save: opts.save });
      const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
      // the engine's own option schema, defaults and all: eval --expand measures what search --expand runs
      const weights = expandWeights(
        parseSearchOptions(
          { expand: opts.expand, expandSynonym: num(opts.expandSynonym), expandHypernym: num(opts.expandHypernym), expandCaption: num(opts.expandCaption) },
          flagOf,
        ),
      );
      const tableFile = weights ? expansionTableFile(opts.model) : undefined;
      if (weights && !tableFile) throw createError('BAD_ARGUMENT', '--expand', `no query-expansion table for model ${opts.model} (build one with npm run build:expansions)`);
      const expand = weights && tableFile ? { weights, table: loadExpansionTable(tableFile) } : undefined;
      const encoder = await loadEncoder(opts.model, { head: opts.head });
      if (opts.report) {
        const reranker = await loadReranker(opts.reranker ?? defaultModelPath());
        const bar = progressBar('report');
        try {
          const report = await runReport(ds, encoder, reranker, {
            outDir: opts.report,
            k1s,
            fusions,
            alpha: alphaFlag,
            ceSubset: opts.ceSubset,
            maxQueries: opts.maxQueries,
            describe: { command: `duo ${process.argv.slice(2).join(' ')}`, commit: gitCommit() },
            onProgress: (_s, d, n) => bar.update(d, n),
          });
          bar.stop();
          console.log(`report: ${join(opts.report, 'report.md')} (${(report.seconds as number).toFixed(0)} s)`);
        } finally {
          bar.stop();
          await reranker.dispose();
          await encoder.dispose();
        }
        return;
      }
      if (opts.mode === 'hybrid') {
        const reranker = await loadReranker(opts.reranker ?? defaultModelPath());
        const bar = progressBar('hybrid');
        try {
          const r = await evaluateHybrid(ds, encoder, reranker, {
            k1: k1s,
            fusion: fusions,
            alpha: alphas,
            maxQueries: opts.maxQueries,
            directions: parseDirections(opts.directions),
            expand,
            onProgress: (_s, d, n) => bar.update(d, n),
          });
          bar.stop();
          const sweep = (alphas?.length ?? 0) > 1;
          const out = {
            dataset: ds.name,
            split: ds.split,
            model: encoder.id,
            reranker: reranker.id,
            mode: 'hybrid',
            k1: k1s[0],
            fusion: fusions[0],
            // one α: a number (text→image's; image→text's beside it when the cross-encoder's own differ); a sweep: the list
            ...(sweep
              ? { alpha: alphas }
              : { alpha: r.alpha.textToImage, ...(r.alpha.imageToText !== r.alpha.textToImage ? { alphaImageToText: r.alpha.imageToText } : {}) }),
            ...(expand ? { expand: expand.weights } : {}),
            images: ds.images.length,
            captions: ds.captions.length,
            textToImage: r.textToImage && publicMetrics(r.textToImage),
            imageToText: r.imageToText && publicMetrics(r.imageToText),
            latencyMs: r.latencyMs,
            stage1: { textToImage: r.stage1.textToImage && publicMetrics(r.stage1.textToImage), imageToText: r.stage1.imageToText && publicMetrics(r.stage1.imageToText) },
            configs: r.configs.map((c) => ({
              k1: c.k1,
              fusion: c.fusion,
              ...(sweep && c.alpha ? { alpha: c.alpha.textToImage } : {}),
              textToImage: c.textToImage && publicMetrics(c.textToImage),
              imageToText: c.imageToText && publicMetrics(c.imageToText),
              vsStage1: c.vsStage1,
            })),
          };
          if (opts.save) await writeFileAtomic(opts.save, `${JSON.stringify(out, null, 2)}\n`);
          if (opts.json) console.log(JSON.stringify(out));
          else {
            console.log(`${out.dataset} ${out.split}: ${out.images} images, ${out.captions} captions; model ${out.model}, reranker ${out.reranker}`);
            const rows: (string | number)[][] = [];
            const add = (label: string, dir: string, m: Public | undefined, vs?: RecallDifference) =>
              m && rows.push([label, dir, m['R@1'].toFixed(2), m['R@5'].toFixed(2), m['R@10'].toFixed(2), formatInterval(m.interval95?.['R@10']), formatDifference(vs?.['R@1']), formatDifference(vs?.['R@10']), m.MRR.toFixed(4), m.medianRank]);
            add('stage 1', 'text→image', out.stage1.textToImage);
            add('stage 1', 'image→text', out.stage1.imageToText);
            for (const c of out.configs) {
              const label = `hybrid k1=${c.k1} ${c.fusion}${'alpha' in c ? ` α=${c.alpha}` : ''}`;
              add(label, 'text→image', c.textToImage, c.vsStage1.textToImage);
              add(label, 'image→text', c.imageToText, c.vsStage1.imageToText);
            }
            console.log(formatTable(['mode', 'direction', 'R@1', 'R@5', 'R@10', 'R@10 95%', 'R@1 − stage 1 (95%)', 'R@10 − stage 1 (95%)', 'MRR', 'median rank'], rows));
            console.log(INTERVAL_NOTE);
            if (!sweep && fusions.includes('weighted')) console.log(`weighted fusion α: ${r.alpha.textToImage} text→image, ${r.alpha.imageToText} image→text`);
            const l = out.latencyMs;
            console.log(`per query: stage 1 p50 ${l.stage1.p50.toFixed(1)} ms, stage 2 (k1 ${Math.max(...k1s)}) p50 ${l.stage2.p50.toFixed(1)} ms, p95 ${l.stage2.p95.toFixed(1)} ms`);
          }
        } finally {
          bar.stop();
          await reranker.dispose();
          await encoder.dispose();
        }
        return;
      }
      const bars = { images: progressBar('images'), texts: progressBar('captions') };
      try {
        const embedQueries = expand ? (texts: string[], o: { onProgress?: (d: number, n: number) => void }) => embedExpanded(encoder, texts, expand.table, expand.weights, o) : undefined;
        const result = await evaluateRetrieval(ds, encoder, { onProgress: (stage, d, n) => bars[stage].update(d, n), embedQueries });
        bars.images.stop();
        bars.texts.stop();
        const out = { ...evalJson(result), ...(expand ? { expand: expand.weights } : {}) };
        if (opts.save) await writeFileAtomic(opts.save, `${JSON.stringify(out, null, 2)}\n`);
        if (opts.json) {
          console.log(JSON.stringify(out));
          return;
        }
        console.log(`${out.dataset} ${out.split}: ${out.images} images, ${out.captions} captions, model ${out.model}`);
        printMetrics(out.textToImage, out.imageToText);
      } finally {
        await encoder.dispose();
      }
    });
}
