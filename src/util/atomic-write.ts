import { mkdirSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import writeFileAtomicLib from 'write-file-atomic';

/**
 * Writes a file so that readers see the old contents or the new, never a part
 * (write-file-atomic: temporary file, fsync, rename; the temporary file is removed on failure).
 */
export async function writeFileAtomic(path: string, chunks: Uint8Array[] | Uint8Array | string): Promise<void> {
  mkdirSync(dirname(path), { recursive: true });
  const data = typeof chunks === 'string' ? chunks : Buffer.concat(chunks instanceof Uint8Array ? [chunks] : chunks);
  await writeFileAtomicLib(path, data);
}

/**
 * The same guarantee for content too large to hold in one buffer (a compacted stage-2 file can
 * be gigabytes): write-file-atomic takes the whole content at once, so this streams chunks into
 * a temporary file beside the target, fsyncs, renames, and removes the temporary file on failure.
 */
export async function writeFileAtomicStream(path: string, produce: (write: (chunk: Uint8Array) => Promise<void>) => Promise<void>): Promise<void> {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
  const handle = await open(tmp, 'w');
  try {
    await produce(async (chunk) => {
      await handle.write(chunk);
    });
    await handle.sync();
    await handle.close();
    await rename(tmp, path);
  } catch (error) {
    await handle.close().catch(() => {});
    await rm(tmp, { force: true });
    throw error;
  }
}
