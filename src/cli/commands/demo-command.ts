import type { Command } from 'commander';
import { existsSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { datasetCaptions } from '../../data/caption-file.js';
import { readFlickr8k } from '../../data/readers/flickr8k.js';
import { createError, DuoError } from '../../errors.js';
import { buildCaptionIndex } from '../../index/build-caption-index.js';
import { buildIndex } from '../../index/build-index.js';
import { defaultModelPath, loadEncoder } from '../../models/load-encoder.js';
import { loadReranker } from '../../models/load-reranker.js';
import { openEngine } from '../../search/open-engine.js';
import { formatTable, progressBar } from '../output.js';

const DEMO_INDEX = 'runs/demo/dev.duo';
const QUERIES = ['a black dog running in the snow', 'a child in a red shirt', 'people on a beach near blue water', 'a man riding a bike'];

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('index the Flickr8k dev images with the default model, then answer a few example queries (both stages when the model has a cross-encoder)')
    .option('--data <dir>', 'Flickr8k folder', '../shared/datasets/flickr8k')
    .option('--split <name>', 'split whose images to index', 'dev')
    .option('--index <path>', 'index folder', DEMO_INDEX)
    .option('--model <idOrDir>', 'model', defaultModelPath())
    .action(async (opts: { data: string; split: string; index: string; model: string }) => {
      if (!existsSync(opts.data)) throw createError('FILE_NOT_FOUND', resolve(opts.data));
      const ds = await readFlickr8k(opts.data, opts.split);
      const root = join(opts.data, 'images');
      const encoder = await loadEncoder(opts.model);
      // the starter pack carries its cross-encoder; a folder without one runs stage 1 alone
      const rerankerSpec = existsSync(join(opts.model, 'cross_encoder.bin')) ? resolve(opts.model) : undefined;
      const reranker = rerankerSpec ? await loadReranker(rerankerSpec) : undefined;
      const bar = progressBar(`indexing ${ds.images.length} ${opts.split} images`);
      const build = () => buildIndex({ root, indexPath: opts.index, encoder, modelSpec: opts.model, reranker, rerankerSpec, only: new Set(ds.images.map((i) => i.id)), onProgress: bar.update });
      let report: Awaited<ReturnType<typeof build>>;
      try {
        report = await build();
      } catch (error) {
        // the demo's own index (the default --index) is scratch: one left by an earlier default model (an upgrade) is built
        // again; an index named by --index is the user's, and is never deleted
        if (!(error instanceof DuoError && error.code === 'INDEX_MODEL_MISMATCH' && resolve(opts.index) === resolve(DEMO_INDEX))) throw error;
        bar.stop();
        console.log(`${opts.index} was built with ${String(error.args[1])}, not ${encoder.id}: building it again`);
        rmSync(opts.index, { recursive: true, force: true });
        report = await build();
      }
      bar.stop();
      console.log(`indexed ${report.total} images (${report.encoded} encoded, ${report.reused} unchanged, ${report.failed.length} failed) in ${report.seconds.toFixed(1)} s → ${opts.index}`);
      console.log(`model: ${encoder.id}${reranker ? `, cross-encoder: ${reranker.id}` : ''}\n`);
      const mode = reranker ? 'hybrid' : 'stage1';
      // the engines borrow the models loaded here; this command disposes them at the end
      const engine = await openEngine({ index: opts.index, encoder, reranker: reranker ?? 'none' });
      const responses = await engine.search(QUERIES.map((text) => ({ text })), { k: 5, mode });
      for (const r of responses) {
        console.log(`query: ${r.query}  (${mode}, ${r.latencyMs.total.toFixed(1)} ms)`);
        console.log(formatTable(['rank', 'score', 'stage 1 rank', 'stage 2 rank', 'image'], r.results.map((h) => [h.rank, h.score, h.stage1.rank, h.stage2?.rank ?? '-', h.id])));
        console.log('');
      }

      // image→text: the split's captions as a collection, searched with one of its images
      const captionIndex = opts.index.replace(/(\.duo)?$/, '-captions.duo');
      await buildCaptionIndex({ captions: datasetCaptions(ds), indexPath: captionIndex, encoder, modelSpec: opts.model, source: opts.data });
      const captionEngine = await openEngine({ index: captionIndex, encoder, reranker: reranker ?? 'none' });
      const image = ds.images[0]!;
      const [byImage] = await captionEngine.search([{ image: join(root, image.id) }], { k: 5, mode });
      console.log(`image → captions: ${image.id}  (${mode}, ${byImage!.latencyMs.total.toFixed(1)} ms; its own captions are ${image.id}#0–#4)`);
      console.log(formatTable(['rank', 'score', 'caption id', 'caption'], byImage!.results.map((h) => [h.rank, h.score, h.id, h.text ?? ''])));
      await engine.close();
      await captionEngine.close();
      await reranker?.dispose();
      await encoder.dispose();
    });
}
