/** `duo eval --model a,b --ensemble-weights 0.3,0.5,0.7`: the ensemble's weights chosen on the split (src/eval/ensemble-sweep.ts). */
import type { RetrievalDataset } from '../../data/dataset.js';
import { sweepEnsemble } from '../../eval/ensemble-sweep.js';
import type { RankMetrics } from '../../eval/metrics.js';
import { createError } from '../../errors.js';
import { parseEnsembleSpec } from '../../models/ensemble-encoder.js';
import type { Encoder } from '../../models/encoder.js';
import { loadEncoder } from '../../models/load-encoder.js';
import { writeFileAtomic } from '../../util/atomic-write.js';
import { formatTable, progressBar } from '../output.js';

export async function evalEnsembleWeights(ds: RetrievalDataset, o: { model: string; ensembleWeights: string; json?: boolean; save?: string }): Promise<void> {
  const specs = parseEnsembleSpec(o.model);
  if (!specs) throw createError('BAD_ARGUMENT', '--ensemble-weights', 'needs an ensemble: --model a,b');
  const weights = o.ensembleWeights.split(',').map((w) => {
    const x = Number(w.trim());
    if (!Number.isFinite(x)) throw createError('BAD_ARGUMENT', '--ensemble-weights', `"${w}" is not a number`);
    return x;
  });
  const members: { spec: string; encoder: Encoder }[] = [];
  const bar = progressBar('ensemble');
  try {
    for (const s of specs) members.push({ spec: s.spec, encoder: await loadEncoder(s.spec) });
    const r = await sweepEnsemble(ds, members, weights, bar.update);
    bar.stop();
    const out = { dataset: ds.name, split: ds.split, images: ds.images.length, captions: ds.captions.length, ...r };
    if (o.save) await writeFileAtomic(o.save, `${JSON.stringify(out, null, 2)}\n`);
    if (o.json) {
      console.log(JSON.stringify(out));
      return;
    }
    const m = (x: { textToImage: RankMetrics; imageToText: RankMetrics; rsum: number }) =>
      [x.textToImage['R@1'], x.textToImage['R@5'], x.textToImage['R@10'], x.imageToText['R@1'], x.imageToText['R@5'], x.imageToText['R@10'], x.rsum].map((v) => v.toFixed(2));
    const rows = [
      ...r.members.map((x, i) => [`${x.spec} alone (spread ${r.spreads[i]!.toFixed(4)})`, ...m(x)]),
      ...r.rows.map((x) => [`standardised ${x.standardised.map((w) => w.toFixed(2)).join('/')}`, ...m(x)]),
    ];
    console.log(`${ds.name} ${ds.split}: ${ds.images.length} images, ${ds.captions.length} captions`);
    console.log(formatTable(['model', 't→i R@1', 'R@5', 'R@10', 'i→t R@1', 'R@5', 'R@10', 'rsum'], rows));
    console.log(`best: --model ${r.best.spec}`);
  } finally {
    bar.stop();
    for (const m of members) await m.encoder.dispose();
  }
}
