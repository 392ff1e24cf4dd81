#!/usr/bin/env node
// npm run build: src/ → dist/ (JavaScript, .d.ts, source maps) with tsconfig.build.json.
// dist/ is emptied first, so a source file moved or deleted leaves no stale module behind,
// and every non-TypeScript file under src/ (the BLIP export script, any data file read beside
// its module through import.meta.url) is copied to the same place under dist/.
import { execFileSync } from 'node:child_process';
import { cpSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'src');
const dist = join(root, 'dist');

rmSync(dist, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
try {
  execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
} catch {
  process.exit(1); // tsc has printed the errors
}

for (const entry of readdirSync(src, { recursive: true, withFileTypes: true })) {
  if (!entry.isFile() || entry.name.endsWith('.ts') || entry.parentPath.includes('__pycache__')) continue;
  const from = join(entry.parentPath, entry.name);
  cpSync(from, join(dist, relative(src, from)));
}

// the web page is part of the package: built after the emptying above, so dist/web is never lost
try {
  execFileSync(process.execPath, [join(root, 'scripts', 'build-web.mjs')], { stdio: 'inherit' });
} catch {
  process.exit(1);
}
