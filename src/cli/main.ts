/**
 * The `duo` command line. Errors print one line naming the bad file, flag or value and
 * exit non-zero (2 usage, 65 bad data, 66 missing input); `--debug` adds the stack.
 */
import { Command, CommanderError } from 'commander';
import { DuoError, exitCodeFor } from '../errors.js';
import { printable } from './output.js';
import { registerDemo } from './commands/demo-command.js';
import { registerEval } from './commands/eval-command.js';
import { registerIndex } from './commands/index-command.js';
import { registerIndexCaptions } from './commands/index-captions-command.js';
import { registerMigrate } from './commands/migrate-command.js';
import { registerEmbed } from './commands/embed-command.js';
import { registerImport } from './commands/import-command.js';
import { registerRuns } from './commands/runs-command.js';
import { registerSearch } from './commands/search-command.js';
import { registerServe } from './commands/serve-command.js';
import { registerExportPack, registerTrain } from './commands/train-command.js';
import { registerTrainHead } from './commands/train-head-command.js';
import { registerOpenVocab } from './commands/open-vocab-command.js';
import { registerExportCross, registerTrainCross } from './commands/train-cross-command.js';
import { registerTuneFusion } from './commands/tune-fusion-command.js';
import { registerPackMembers } from './commands/pack-members-command.js';
import { registerQueryBank } from './commands/query-bank-command.js';

export function buildProgram(): Command {
  const program = new Command('duo')
    .description('two-stage image-text search: index photos, search them by text or image, evaluate models')
    .option('--debug', 'print stack traces on error')
    .showHelpAfterError(false)
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  registerIndex(program);
  registerIndexCaptions(program);
  registerMigrate(program);
  registerEmbed(program);
  registerImport(program);
  registerSearch(program);
  registerServe(program);
  registerEval(program);
  registerDemo(program);
  registerTrain(program);
  registerExportPack(program);
  registerRuns(program);
  registerTrainHead(program);
  registerOpenVocab(program);
  registerTrainCross(program);
  registerExportCross(program);
  registerTuneFusion(program);
  registerPackMembers(program);
  registerQueryBank(program);
  for (const c of program.commands) c.exitOverride();
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  const debug = argv.includes('--debug');
  try {
    await program.parseAsync(argv, { from: 'user' });
    // a command that finished but with partial failures (search --queries) sets its own status
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // commander has already printed its message (unknown option, missing argument…)
      return error.exitCode === 0 ? 0 : 2;
    }
    const message = error instanceof Error ? error.message : String(error);
    // our own messages are one line, unless a file name or query they quote holds a line break:
    // that is escaped rather than cut; anything else is cut to its first line
    process.stderr.write(`duo: ${printable(error instanceof DuoError ? message : (message.split('\n')[0] ?? ''))}\n`);
    if (debug && error instanceof Error) process.stderr.write(`${error.stack}\n`);
    else if (!(error instanceof DuoError)) process.stderr.write('(run with --debug for the stack trace)\n');
    return exitCodeFor(error);
  }
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('main.ts')) {
  process.exitCode = await main(process.argv.slice(2));
}
