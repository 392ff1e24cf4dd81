#!/usr/bin/env node
// npm run build: src/ → dist/ (JavaScript, .d.ts, source maps) with tsconfig.build.json.
// It builds into a fresh folder beside dist/ and then swaps it in, so a source file moved or
// deleted leaves no stale module behind, and a `duo` process started meanwhile (a server, a
// test) never finds dist/ half built or missing; every non-TypeScript file under src/ (the BLIP
// export script, any data file read beside its module through import.meta.url) is copied to
// the same place.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'src');
const dist = join(root, 'dist');
const next = join(root, `.dist-${process.pid}`);

const fail = () => {
  rmSync(next, { recursive: true, force: true });
  process.exit(1); // tsc has printed the errors
};
rmSync(next, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
try {
  execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json'), '--outDir', next], { stdio: 'inherit' });
} catch {
  fail();
}

for (const entry of readdirSync(src, { recursive: true, withFileTypes: true })) {
  if (!entry.isFile() || entry.name.endsWith('.ts') || entry.parentPath.includes('__pycache__')) continue;
  const from = join(entry.parentPath, entry.name);
  cpSync(from, join(next, relative(src, from)));
}

// the web page is part of the package
try {
  execFileSync(process.execPath, [join(root, 'scripts', 'build-web.mjs'), next], { stdio: 'inherit' });
} catch {
  fail();
}

// two renames: dist/ is missing only between them, not for the whole build
const old = join(root, `.dist-old-${process.pid}`);
if (existsSync(dist)) renameSync(dist, old);
renameSync(next, dist);
rmSync(old, { recursive: true, force: true });
