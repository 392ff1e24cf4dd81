import { open, rename, rm } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { mkdirSync } from 'node:fs';

/**
 * Writes a file so that readers see the old contents or the new, never a part: write a
 * temporary file beside it, fsync, rename over the target, fsync the directory.
 */
export async function writeFileAtomic(path: string, chunks: Uint8Array[] | Uint8Array | string): Promise<void> {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
  const parts = typeof chunks === 'string' ? [Buffer.from(chunks)] : chunks instanceof Uint8Array ? [chunks] : chunks;
  const handle = await open(tmp, 'w');
  try {
    for (const part of parts) await handle.write(part);
    await handle.sync();
  } catch (error) {
    await handle.close();
    await rm(tmp, { force: true });
    throw error;
  }
  await handle.close();
  await rename(tmp, path);
  const dirHandle = await open(dir, 'r');
  try {
    await dirHandle.sync();
  } finally {
    await dirHandle.close();
  }
}
