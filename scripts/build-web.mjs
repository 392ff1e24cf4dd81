#!/usr/bin/env node
// The web page (web/) → dist/web: its TypeScript compiled with web/tsconfig.json (browser ES
// modules, DOM types), then index.html and styles.css copied beside it. No bundler, no CDN:
// the browser loads the modules from the same server. Run by scripts/build.mjs with the folder
// it is building (`build-web.mjs <dist>`); alone it writes dist/web.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const web = join(root, 'web');
const out = join(process.argv[2] ?? join(root, 'dist'), 'web');

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
try {
  execFileSync(process.execPath, [tsc, '-p', join(web, 'tsconfig.json'), '--outDir', out], { stdio: 'inherit' });
} catch {
  process.exit(1); // tsc has printed the errors
}
for (const file of ['index.html', 'styles.css']) cpSync(join(web, file), join(out, file));
