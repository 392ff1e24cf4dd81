import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { createError } from '../../errors.js';
import { loadReranker } from '../../models/load-reranker.js';
import { SearchEngine, type Query, type SearchOptions } from '../../search/engine.js';
import { writeFileAtomic } from '../../util/atomic-write.js';
import { loadConfig, searchOptions } from '../config.js';
import { formatTable } from '../output.js';

interface SearchFlags {
  index?: string;
  image?: string;
  k?: string;
  k1?: string;
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
}

const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));

function parseWhere(pairs: string[] | undefined): Record<string, string> | undefined {
  if (!pairs || pairs.length === 0) return undefined;
  return Object.fromEntries(
    pairs.map((p) => {
      const eq = p.indexOf('=');
      if (eq <= 0) throw createError('BAD_ARGUMENT', '--where', `expected key=value, got "${p}"`);
      return [p.slice(0, eq), p.slice(eq + 1)];
    }),
  );
}

export function registerSearch(program: Command): void {
  program
    .command('search')
    .description('search an index by text, or by image with --image; --mode hybrid reranks with a cross-encoder')
    .argument('[text]', 'text query')
    .option('--index <path>', 'index file (or `index:` in the config)')
    .option('--image <file>', 'query by this image instead of text')
    .option('--k <n>', 'results to return (k2)')
    .option('--k1 <n>', 'stage-1 candidates for stage 2')
    .option('--mode <mode>', 'stage1 or hybrid')
    .option('--fusion <mode>', 'replace, weighted or rrf')
    .option('--alpha <x>', 'weight of stage 2 in weighted fusion')
    .option('--mmr <lambda>', 'MMR diversity trade-off in (0, 1]')
    .option('--budget-ms <ms>', "stage 2's time budget; past it, stage-1 results are returned")
    .option('--reranker <dir>', 'cross-encoder folder (BLIP ITM export, or a starter pack)')
    .option('--where <key=value...>', 'metadata filters, e.g. folder=holidays')
    .option('--config <file>', 'YAML config (default: ./duo.yaml if present)')
    .option('--model <idOrDir>', 'model to query with (default: the one that built the index)')
    .option('--explain', 'show both stages\' scores and ranks per result')
    .option('--json', 'print results as JSON')
    .option('--save-results <file>', 'also write the JSON results to this file')
    .action(async (text: string | undefined, flags: SearchFlags) => {
      const config = loadConfig(flags.config);
      const indexPath = flags.index ?? config.index;
      if (!indexPath) throw createError('BAD_ARGUMENT', '--index', 'required (or set index: in the config)');
      if ((text === undefined) === (flags.image === undefined)) {
        throw createError('BAD_ARGUMENT', 'query', 'give either a text argument or --image <file>, not both or neither');
      }
      if (flags.image !== undefined && !existsSync(flags.image)) throw createError('FILE_NOT_FOUND', flags.image);
      if (!existsSync(indexPath)) throw createError('FILE_NOT_FOUND', indexPath);
      const options = searchOptions(config, {
        mode: flags.mode as SearchOptions['mode'] | undefined,
        k2: num(flags.k),
        k1: num(flags.k1),
        fusion: flags.fusion as SearchOptions['fusion'] | undefined,
        alpha: num(flags.alpha),
        mmrLambda: num(flags.mmr),
        budgetMs: num(flags.budgetMs),
        where: parseWhere(flags.where),
      });
      const rerankerSpec = flags.reranker ?? config.reranker;
      if (options.mode === 'hybrid' && !rerankerSpec) throw createError('BAD_ARGUMENT', '--reranker', 'hybrid mode needs a cross-encoder folder');
      const reranker = options.mode === 'hybrid' && rerankerSpec ? await loadReranker(rerankerSpec) : undefined;
      const engine = await SearchEngine.open(indexPath, { model: flags.model ?? config.model, reranker });
      try {
        const query: Query = text !== undefined ? { text } : { image: flags.image! };
        const [response] = await engine.search([query], options);
        const out = { index: indexPath, model: engine.encoder.id, reranker: reranker?.id, k: response!.results.length, ...response! };
        if (flags.saveResults) await writeFileAtomic(flags.saveResults, `${JSON.stringify(out, null, 2)}\n`);
        if (flags.json) {
          console.log(JSON.stringify(out, null, 2));
          return;
        }
        console.log(`query: ${out.query}${out.fallback ? `  [${out.fallback}]` : ''}`);
        const explain = flags.explain || out.mode === 'hybrid';
        const item = engine.captions ? 'caption' : 'image';
        console.log(
          formatTable(
            explain ? ['rank', 'score', 'stage 1 (rank)', 'stage 2 (rank)', item] : ['rank', 'score', item],
            out.results.map((r) =>
              explain
                ? [r.rank, r.score, `${r.stage1.score.toFixed(4)} (${r.stage1.rank})`, r.stage2 ? `${r.stage2.score.toFixed(4)} (${r.stage2.rank})` : '-', r.path ?? r.text ?? '']
                : [r.rank, r.score, r.path ?? r.text ?? ''],
            ),
          ),
        );
        const l = out.latencyMs;
        console.log(`${l.total.toFixed(1)} ms (encode ${l.encode.toFixed(1)}, stage 1 ${l.stage1.toFixed(1)}, stage 2 ${l.stage2.toFixed(1)}, fusion ${l.fusion.toFixed(1)}) over ${engine.size} ${item}s`);
      } finally {
        await engine.close();
      }
    });
}
