/**
 * `--ann auto|on|off` and its settings, shared by the commands that create or extend an index
 * (`duo index`, `duo import`); src/index/ann.ts says what they mean.
 */
import { Option, type Command } from 'commander';
import { annAutoMinItems, DEFAULT_HNSW, QUANTIZATIONS, type AnnFlags } from '../index/ann.js';
import { positiveInt } from './output.js';

export function addAnnOptions(command: Command): Command {
  return command
    .addOption(
      new Option('--ann <mode>', `the scan: auto (HNSW from ${annAutoMinItems(256).toLocaleString('en')} items at 256-d, ${annAutoMinItems(512).toLocaleString('en')} at 512-d; else exact), on (HNSW), off (exact); an existing index keeps what it recorded unless this is given, and is converted during the run`).choices([
        'auto',
        'on',
        'off',
      ]),
    )
    .addOption(new Option('--ann-quantization <q>', `how the HNSW graph stores vectors (default ${DEFAULT_HNSW.quantization}; f16 and i8 results are re-scored exactly); a change rebuilds the graph`).choices([...QUANTIZATIONS]))
    .option('--ann-connectivity <n>', `HNSW links per node (default ${DEFAULT_HNSW.connectivity}); a change rebuilds the graph`, positiveInt('--ann-connectivity'))
    .option('--ann-expansion <n>', `HNSW search expansion: recall against speed (default ${DEFAULT_HNSW.expansionSearch}); recorded in the index`, positiveInt('--ann-expansion'));
}

/** The --ann flags out of a command's parsed options. */
export const annFlags = (o: AnnFlags): AnnFlags => ({ ann: o.ann, annQuantization: o.annQuantization, annConnectivity: o.annConnectivity, annExpansion: o.annExpansion });
