import type { Command } from 'commander';
import { existsSync, lstatSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createError, DuoError } from '../../errors.js';
import type { EngineResponse, Query, SearchEngine } from '../../search/engine.js';
import { isPgLocation } from '../../index/pg-location.js';
import { openEngine } from '../../search/open-engine.js';
import { hasImageExtension, parseQueryExpression } from '../../search/query-terms.js';
import { writeFileAtomic } from '../../util/atomic-write.js';
import { loadConfig, searchOptions } from '../config.js';
import { formatTable, printable } from '../output.js';
import { parseWhere } from '../where.js';

interface SearchFlags {
  index?: string;
  image?: string;
  queries?: string;
  k?: string;
  k1?: string;
  offset?: string;
  mode?: string;
  fusion?: string;
  alpha?: string;
  mmr?: string;
  budgetMs?: string;
  reranker?: string;
  where?: string[];
  config?: string;
  json?: boolean;
  saveResults?: string;
  model?: string;
  explain?: boolean;
  expand?: boolean;
  expandSynonym?: string;
  expandHypernym?: string;
  expandCaption?: string;
}

const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));

/** In a query expression, a phrase is an image when it names an existing file with an image extension (.jpg, .png, …). */
const isImageFile = (p: string) => hasImageExtension(p) && (statSync(p, { throwIfNoEntry: false })?.isFile() ?? false);

/** A query as typed: plain text as ever, or an expression of weighted terms (`"a dog" - "grass"`, `2:beach + photo.jpg`). */
const parseQuery = (text: string, field: string): Query => parseQueryExpression(text, { field, isImage: isImageFile });
/** queries answered per engine call in --queries mode: one encoder batch and one stage-1 scan each */
const BATCH = 32;

export function registerSearch(program: Command): void {
  program
    .command('search')
    .description('search an index by text, by image (--image), or a file of queries (--queries); --mode hybrid reranks with the cross-encoder')
    .argument('[text]', 'text query, or weighted terms: "a dog" - "grass", 2:beach + photo.jpg, item:<id> (see README)')
    .option('--index <path>', 'index folder (or `index:` in the config)')
    .option('--image <file>', 'query by this image instead of text')
    .option('--queries <file>', 'one query per line (text or weighted terms; blank lines skipped); with --json, one JSON line per query, in order')
    .option('--k <n>', 'results to return')
    .option('--k1 <n>', 'stage-1 candidates for stage 2 (and for --mmr)')
    .option('--offset <n>', 'skip this many results first (paging)')
    .option('--mode <mode>', 'stage1 or hybrid')
    .option('--fusion <mode>', 'replace, weighted or rrf')
    .option('--alpha <x>', 'weight of stage 2 in weighted fusion')
    .option('--mmr <lambda>', 'MMR diversity trade-off in (0, 1]')
    .option('--budget-ms <ms>', "stage 2's time budget; past it, stage-1 results are returned")
    .option('--reranker <dir>', 'cross-encoder folder (default: the one the index recorded)')
    .option('--where <filter...>', 'metadata filters: key=value, key>=value, key<value, key=[a,b], folder=holidays')
    .option('--config <file>', 'YAML config (default: ./duo.yaml if present)')
    .option('--model <idOrDir>', 'model to query with (default: the one that built the index)')
    .option('--explain', "show both stages' scores and ranks per result")
    .option('--expand', 'query expansion: WordNet synonyms and hypernyms and caption-style rewrites, combined in embedding space')
    .option('--no-expand', 'no query expansion (where the config turns it on)')
    .option('--expand-synonym <w>', 'with --expand: weight of the synonym rewrites in [0, 1] (the query weighs 1)')
    .option('--expand-hypernym <w>', 'with --expand: weight of the hypernym rewrites in [0, 1]')
    .option('--expand-caption <w>', 'with --expand: weight of the caption-style rewrites in [0, 1]')
    .option('--json', 'print results as JSON')
    .option('--save-results <file>', 'also write the JSON results to this file')
    .action(async (text: string | undefined, flags: SearchFlags) => {
      const config = loadConfig(flags.config);
      const indexPath = flags.index ?? config.index;
      if (!indexPath) throw createError('BAD_ARGUMENT', '--index', 'required (or set index: in the config)');
      const given = [text !== undefined, flags.image !== undefined, flags.queries !== undefined].filter(Boolean).length;
      if (given !== 1) throw createError('BAD_ARGUMENT', 'query', 'give one of: a text argument, --image <file>, --queries <file>');
      if (text !== undefined && text.trim() === '') throw createError('BAD_ARGUMENT', 'query', 'is empty');
      if (flags.queries !== undefined && !existsSync(flags.queries)) throw createError('FILE_NOT_FOUND', flags.queries);
      // lstat, not existsSync: a symlink loop or a link to nothing is there, and the image loader says which it is
      if (flags.image !== undefined && !lstatSync(flags.image, { throwIfNoEntry: false })) throw createError('FILE_NOT_FOUND', flags.image);
      // a database URL (postgres://…) is checked when the store opens it
      if (!isPgLocation(indexPath) && !existsSync(indexPath)) throw createError('FILE_NOT_FOUND', indexPath);
      const options = searchOptions(config, {
        mode: flags.mode,
        k: num(flags.k),
        k1: num(flags.k1),
        offset: num(flags.offset),
        fusion: flags.fusion,
        alpha: num(flags.alpha),
        mmr: num(flags.mmr),
        budgetMs: num(flags.budgetMs),
        where: parseWhere(flags.where),
        expand: flags.expand,
        expandSynonym: num(flags.expandSynonym),
        expandHypernym: num(flags.expandHypernym),
        expandCaption: num(flags.expandCaption),
      });
      const rerankerFlag = flags.reranker ?? config.reranker;
      const engine = await openEngine({ index: indexPath, model: flags.model ?? config.model, reranker: options.mode === 'hybrid' ? (rerankerFlag ?? 'recorded') : 'none' });
      try {
        if (options.mode === 'hybrid' && !engine.reranker) throw createError('BAD_ARGUMENT', '--reranker', `index ${indexPath} records no cross-encoder: give one, or rebuild the index with --reranker`);
        const header = { index: indexPath, model: engine.encoder.id, reranker: engine.reranker?.id };
        if (flags.queries !== undefined) {
          process.exitCode = await runBatch(engine, flags.queries, options, header, flags);
          return;
        }
        const query: Query = text !== undefined ? parseQuery(text, 'query') : { image: flags.image! };
        const [response] = await engine.search([query], options);
        const out = { ...header, k: response!.results.length, ...response! };
        if (flags.saveResults) await writeFileAtomic(flags.saveResults, `${JSON.stringify(out, null, 2)}\n`);
        if (flags.json) console.log(JSON.stringify(out, null, 2));
        else printResponse(engine, out, flags.explain);
      } finally {
        await engine.close();
      }
    });
}

/** Answers a file of queries in batches; a query that cannot be answered gets an error line and the rest go on. */
async function runBatch(engine: SearchEngine, file: string, options: Parameters<SearchEngine['search']>[1], header: object, flags: SearchFlags): Promise<number> {
  const lines = (await readFile(file, 'utf8')).split(/\r?\n/).filter((l) => l.trim() !== '');
  if (lines.length === 0) throw createError('BAD_ARGUMENT', '--queries', `${file} holds no queries`);
  const outputs: object[] = [];
  let failed = 0;
  for (let i = 0; i < lines.length; i += BATCH) {
    const batch = lines.slice(i, i + BATCH);
    const ok: Query[] = [];
    const slot: (object | undefined)[] = batch.map((line, j) => {
      try {
        const q = parseQuery(line, `--queries query ${i + j + 1}`);
        engine.checkQuery(q);
        ok.push(q);
        return undefined;
      } catch (error) {
        if (!(error instanceof DuoError)) throw error;
        failed++;
        return { query: line, error: { code: error.code, message: error.message } };
      }
    });
    const answers = ok.length > 0 ? await engine.search(ok, options) : [];
    let next = 0;
    const filled = slot.map((s) => s ?? answers[next++]!) as (object | EngineResponse)[];
    for (const r of filled) {
      const line = 'error' in r ? r : { ...header, k: (r as EngineResponse).results.length, ...r };
      outputs.push(line);
      if (flags.json) console.log(JSON.stringify(line));
      else if ('error' in r) console.log(`query: ${printable((r as { query: string }).query)}\n  error: ${printable((r as { error: { message: string } }).error.message)}\n`);
      else {
        printResponse(engine, r as EngineResponse, flags.explain);
        console.log('');
      }
    }
  }
  if (flags.saveResults) await writeFileAtomic(flags.saveResults, outputs.map((o) => JSON.stringify(o)).join('\n') + '\n');
  if (failed > 0) process.stderr.write(`duo: ${failed} of ${lines.length} queries could not be answered (see their error lines)\n`);
  return failed > 0 ? 65 : 0;
}

function printResponse(engine: SearchEngine, out: EngineResponse, explain: boolean | undefined): void {
  console.log(`query: ${printable(out.query)}${out.fallback ? `  [${out.fallback}]` : ''}${out.cached ? '  (cached)' : ''}`);
  const withStages = explain || out.mode === 'hybrid';
  const item = engine.captions ? 'caption' : 'image';
  console.log(
    formatTable(
      withStages ? ['rank', 'score', 'stage 1 (rank)', 'stage 2 (rank)', item] : ['rank', 'score', item],
      out.results.map((r) =>
        withStages
          ? [r.rank, r.score, `${r.stage1.score.toFixed(4)} (${r.stage1.rank})`, r.stage2 ? `${r.stage2.score.toFixed(4)} (${r.stage2.rank})` : '-', printable(r.path ?? r.text ?? '')]
          : [r.rank, r.score, printable(r.path ?? r.text ?? '')],
      ),
    ),
  );
  const l = out.latencyMs;
  console.log(`${l.total.toFixed(1)} ms (encode ${l.encode.toFixed(1)}, stage 1 ${l.stage1.toFixed(1)}, stage 2 ${l.stage2.toFixed(1)}, fusion ${l.fusion.toFixed(1)})`);
}
