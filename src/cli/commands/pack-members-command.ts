import type { Command } from 'commander';
import { createError } from '../../errors.js';
import { packMembers } from '../../train/pack-members.js';
import { formatTable } from '../output.js';

interface PackMembersFlags {
  pack: string;
  add: string;
  weight: string;
  json?: boolean;
}

/** `a=0.4` or `a=0.4,b=0.2`: member packs with their weights as written (the pack's own weight is one of the shares, so nothing is normalised here). */
function parseMembers(spec: string): { spec: string; weight: number }[] {
  return spec.split(',').map((part, i) => {
    const at = part.lastIndexOf('=');
    if (at <= 0) throw createError('BAD_ARGUMENT', '--add', `member ${i + 1} ("${part}"): give it a weight, <pack>=<weight>`);
    return { spec: part.slice(0, at).trim(), weight: Number(part.slice(at + 1)) };
  });
}

export function registerPackMembers(program: Command): void {
  program
    .command('pack-members')
    .description(
      "put more starter models into one pack: each member pack's text graph, image head and vocabulary go into a folder of the pack and share its backbone " +
        '(an image goes through it once); the pack then embeds with all of them, as --model a,b does for separate packs. ' +
        'Weights are those of the --model spec `duo eval --model a,b --ensemble-weights …` prints for its best row (choose on dev). The model id changes: rebuild indexes, and re-run duo tune-fusion',
    )
    .requiredOption('--pack <dir>', 'the starter pack that receives the members (its own model stays the first)')
    .requiredOption('--add <packs>', 'member packs with weights: <pack>=<weight>[,<pack>=<weight>…] (replaces any earlier members)')
    .requiredOption('--weight <x>', "the pack's own model's weight")
    .option('--json', 'print one JSON object')
    .action(async (flags: PackMembersFlags) => {
      const weight = Number(flags.weight);
      const r = await packMembers({ pack: flags.pack, weight, members: parseMembers(flags.add) });
      if (flags.json) {
        console.log(JSON.stringify(r));
        return;
      }
      const total = r.weight + r.members.reduce((a, m) => a + m.weight, 0);
      console.log(formatTable(['folder', 'from', 'features', 'weight', 'share'], [
        ['.', r.pack, '(its own)', String(r.weight), (r.weight / total).toFixed(4)],
        ...r.members.map((m) => [m.folder, m.from, m.features, String(m.weight), (m.weight / total).toFixed(4)]),
      ]));
      if (r.backboneFrom) console.log(`backbone.onnx replaced by ${r.backboneFrom} (same CenterNet outputs, plus MobileNetV2)`);
      if (r.droppedQueryBank) console.log('the query bank was removed (the model without these members embedded it): write a new one with duo query-bank');
      console.log('the model id changed: rebuild indexes made with this pack, and re-choose fusion α with duo tune-fusion');
    });
}
