import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PACKAGE_NAME = 'duo-search';
let cached: string | undefined;

/**
 * The package's root directory, where `models/` ships: the nearest directory above this file
 * whose package.json is named duo-search. The same walk works from src/util (tsx), from
 * dist/util (the compiled package), and through a node_modules symlink (Node resolves it).
 */
export function packageRoot(): string {
  if (cached) return cached;
  const here = dirname(fileURLToPath(import.meta.url));
  for (let dir = here; ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && readName(manifest) === PACKAGE_NAME) return (cached = dir);
    if (dirname(dir) === dir) break;
  }
  // not inside a duo-search package (copied out of it?): src/util and dist/util are two levels down
  return (cached = join(here, '..', '..'));
}

function readName(manifest: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: unknown }).name as string | undefined;
  } catch {
    return undefined;
  }
}
