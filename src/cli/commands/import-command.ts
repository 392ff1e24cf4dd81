import type { Command } from 'commander';
import { resolve } from 'node:path';
import { NpyReader } from '../../data/npy.js';
import { createError } from '../../errors.js';
import { embedOutput, importVectors, type VectorFiles } from '../../index/import-vectors.js';
import { openStore } from '../../index/open-store.js';
import type { StoreInfo } from '../../index/vector-store.js';
import { recordedSpec } from '../../index/vector-store.js';
import { loadEncoder } from '../../models/load-encoder.js';
import { formatTable, progressBar } from '../output.js';

interface ImportFlags {
  index: string;
  vectors?: string;
  ids?: string;
  metadata?: string;
  model?: string;
  root?: string;
  json?: boolean;
}

export function registerImport(program: Command): void {
  program
    .command('import')
    .description('build or extend an index from embeddings made elsewhere: a duo embed output folder, or --vectors <file.npy> --ids <file.txt>')
    .argument('[embedDir]', 'a duo embed output folder (all its shards)')
    .requiredOption('--index <path>', 'index to create or extend')
    .option('--vectors <file.npy>', 'float32 [N, D] vectors')
    .option('--ids <file.txt>', 'one id per line, N lines')
    .option('--metadata <file.jsonl>', 'one {"id", "metadata"} per line, N lines (optional)')
    .option('--model <spec>', 'the model the vectors come from (checked against their dimension); with an embed folder, checked against what it recorded')
    .option('--root <dir>', 'with --vectors: the folder the ids are paths under (default: the current folder)')
    .option('--json', 'print the report as JSON')
    .action(async (dir: string | undefined, flags: ImportFlags) => {
      if ((dir === undefined) === (flags.vectors === undefined)) throw createError('BAD_ARGUMENT', '--vectors', 'give either an embed output folder or --vectors with --ids, not both or neither');
      let files: VectorFiles[];
      let info: StoreInfo;
      if (dir !== undefined) {
        const shards = await embedOutput(dir);
        const m = shards[0]!.manifest;
        info = { items: 'images', modelId: m.modelId, modelSpec: m.modelSpec, headSpec: m.headSpec, dim: m.dim, root: m.root };
        files = shards.map((s) => s.files);
      } else {
        if (!flags.ids) throw createError('BAD_ARGUMENT', '--ids', 'required with --vectors');
        if (!flags.model) throw createError('BAD_ARGUMENT', '--model', 'required with --vectors (the model the vectors come from)');
        info = { items: 'images', modelId: '', modelSpec: recordedSpec(flags.model), dim: 0, root: resolve(flags.root ?? '.') };
        files = [{ vectors: flags.vectors!, ids: flags.ids, metadata: flags.metadata }];
      }
      if (flags.model) {
        // the model's own id and dimension: vectors of another model are refused before anything is written
        const encoder = await loadEncoder(flags.model);
        await encoder.dispose();
        if (info.modelId && info.modelId !== encoder.id) throw createError('INDEX_MODEL_MISMATCH', dir ?? flags.vectors!, info.modelId, encoder.id);
        info = { ...info, modelId: encoder.id, dim: encoder.dim };
      }
      // every file is checked against the model before the index is created or touched
      for (const f of files) {
        const reader = await NpyReader.open(f.vectors);
        await reader.close();
        if (reader.dim !== info.dim) throw createError('INDEX_DIM_MISMATCH', `${f.vectors} (for model ${info.modelId})`, info.dim, reader.dim);
      }
      const store = await openStore(flags.index, { write: true, create: info });
      const bar = progressBar('importing');
      try {
        if (store.info.modelId !== info.modelId) throw createError('INDEX_MODEL_MISMATCH', flags.index, store.info.modelId, info.modelId);
        let rows = 0;
        for (const f of files) rows += await importVectors(store, f, { onProgress: bar.update });
        bar.stop();
        const total = await store.count();
        if (flags.json) console.log(JSON.stringify({ index: flags.index, imported: rows, total, model: info.modelId }, null, 2));
        else console.log(formatTable(['imported', 'items in index'], [[rows, total]]) + `\nindex: ${flags.index} (model ${info.modelId})`);
      } finally {
        bar.stop();
        await store.close();
      }
    });
}
