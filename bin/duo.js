#!/usr/bin/env node
// The duo command: runs the compiled package in dist/ (npm run build; `npm ci` and `npm pack` build it).
import { existsSync } from 'node:fs';
import { fileURLToPath, URL } from 'node:url';

const main = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(main)) {
  console.error(`duo: ${fileURLToPath(main)} is missing; run \`npm run build\` in the duo-search folder first`);
  process.exit(1);
}
const { main: run } = await import(main.href);
process.exitCode = await run(process.argv.slice(2));
