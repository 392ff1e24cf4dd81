import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package's root directory, where `models/` ships; works from src/ (tsx) and from the bin. */
export function packageRoot(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..');
}
