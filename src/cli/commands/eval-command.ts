import type { Command } from 'commander';
import { openDataset } from '../../data/readers/open-dataset.js';
import { evaluateRetrieval, type RetrievalEvalResult } from '../../eval/retrieval-eval.js';
import type { RankMetrics } from '../../eval/metrics.js';
import { defaultModelPath, loadEncoder } from '../../models/load-encoder.js';
import { writeFileAtomic } from '../../util/atomic-write.js';
import { formatTable, positiveInt, progressBar } from '../output.js';

interface EvalOptions {
  data: string;
  split: string;
  model: string;
  head?: string;
  images?: string;
  limit?: number;
  json?: boolean;
  save?: string;
}

const publicMetrics = (m: RankMetrics) => ({ 'R@1': m['R@1'], 'R@5': m['R@5'], 'R@10': m['R@10'], MRR: m.MRR, medianRank: m.medianRank });

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

export function registerEval(program: Command): void {
  program
    .command('eval')
    .description('text→image and image→text retrieval metrics on a dataset split')
    .requiredOption('--data <path>', 'Flickr8k folder, Flickr30k results.csv, Karpathy dataset_*.json, or parquet file/folder')
    .requiredOption('--split <name>', 'split to evaluate (dev, test, …)')
    .option('--model <idOrDir>', 'Hugging Face model id or local model directory', defaultModelPath())
    .option('--head <dir>', 'projection heads from duo train-head on top of --model')
    .option('--images <dir>', 'image folder for CSV and Karpathy JSON datasets')
    .option('--limit <n>', 'evaluate only the first N images of the split (and their captions)', positiveInt('--limit'))
    .option('--json', 'print one JSON object')
    .option('--save <file>', 'also write the JSON to this file')
    .action(async (opts: EvalOptions) => {
      let ds = await openDataset(opts.data, { split: opts.split, imagesDir: opts.images });
      if (opts.limit && opts.limit < ds.images.length) {
        const keep = new Set(ds.images.slice(0, opts.limit).map((i) => i.id));
        ds = { ...ds, images: ds.images.filter((i) => keep.has(i.id)), captions: ds.captions.filter((c) => keep.has(c.imageId)) };
      }
      const encoder = await loadEncoder(opts.model, { head: opts.head });
      const bars = { images: progressBar('images'), texts: progressBar('captions') };
      try {
        const result = await evaluateRetrieval(ds, encoder, { onProgress: (stage, d, n) => bars[stage].update(d, n) });
        bars.images.stop();
        bars.texts.stop();
        const out = evalJson(result);
        if (opts.save) await writeFileAtomic(opts.save, `${JSON.stringify(out, null, 2)}\n`);
        if (opts.json) {
          console.log(JSON.stringify(out));
          return;
        }
        console.log(`${out.dataset} ${out.split}: ${out.images} images, ${out.captions} captions, model ${out.model}`);
        const row = (name: string, m: ReturnType<typeof publicMetrics>) => [
          name, m['R@1'].toFixed(2), m['R@5'].toFixed(2), m['R@10'].toFixed(2), m.MRR.toFixed(4), m.medianRank,
        ];
        console.log(formatTable(['direction', 'R@1', 'R@5', 'R@10', 'MRR', 'median rank'], [row('text→image', out.textToImage), row('image→text', out.imageToText)]));
      } finally {
        await encoder.dispose();
      }
    });
}
