/**
 * NumPy .npy files of float32 rows (`<f4`, C order, shape (N, D)): what `duo embed` writes and
 * `duo import` reads. Written by hand: npyjs only parses (and only a whole file held in memory),
 * and a million-row shard has to be read a block of rows at a time.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { createError } from '../errors.js';

const MAGIC = Buffer.from([0x93, ...Buffer.from('NUMPY', 'latin1')]);

/** The header of a version-1.0 .npy file for `rows` × `dim` float32, padded so data starts 64-byte aligned. */
export function npyHeader(rows: number, dim: number): Buffer {
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': (${rows}, ${dim}), }`;
  const unpadded = MAGIC.length + 2 + 2 + dict.length + 1;
  const text = dict + ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  const head = Buffer.alloc(MAGIC.length + 4);
  MAGIC.copy(head);
  head[6] = 1; // version 1.0
  head[7] = 0;
  head.writeUInt16LE(text.length, 8);
  return Buffer.concat([head, Buffer.from(text, 'latin1')]);
}

/** An open .npy file of float32 rows, read a block at a time. */
export class NpyReader {
  private constructor(
    private readonly handle: FileHandle,
    readonly path: string,
    readonly rows: number,
    readonly dim: number,
    private readonly dataOffset: number,
  ) {}

  static async open(path: string): Promise<NpyReader> {
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw createError('FILE_NOT_FOUND', path);
      throw error;
    }
    try {
      const head = Buffer.alloc(12);
      await handle.read(head, 0, 12, 0);
      if (!head.subarray(0, 6).equals(MAGIC)) throw createError('DATASET_FORMAT', path, 'not a .npy file');
      const major = head[6]!;
      const lenBytes = major === 1 ? 2 : 4;
      const headerLength = major === 1 ? head.readUInt16LE(8) : head.readUInt32LE(8);
      const start = 8 + lenBytes;
      const text = Buffer.alloc(headerLength);
      await handle.read(text, 0, headerLength, start);
      const dict = text.toString('latin1');
      const descr = /'descr':\s*'([^']+)'/.exec(dict)?.[1];
      const fortran = /'fortran_order':\s*(True|False)/.exec(dict)?.[1];
      const shape = /'shape':\s*\(\s*(\d+)\s*,\s*(\d+)\s*,?\s*\)/.exec(dict);
      if (descr !== '<f4' || fortran !== 'False' || !shape) {
        throw createError('DATASET_FORMAT', path, `expected float32 rows (descr '<f4', C order, shape (N, D)); found ${dict.trim()}`);
      }
      const rows = Number(shape[1]);
      const dim = Number(shape[2]);
      const dataOffset = start + headerLength;
      const { size } = await handle.stat();
      if (size !== dataOffset + rows * dim * 4) throw createError('DATASET_FORMAT', path, `shape (${rows}, ${dim}) needs ${rows * dim * 4} bytes of data, found ${size - dataOffset}`);
      return new NpyReader(handle, path, rows, dim, dataOffset);
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  /** Rows [from, from + count) as one row-major block. */
  async read(from: number, count: number): Promise<Float32Array> {
    const n = Math.max(0, Math.min(count, this.rows - from));
    const out = new Float32Array(n * this.dim);
    await this.handle.read(new Uint8Array(out.buffer), 0, out.byteLength, this.dataOffset + from * this.dim * 4);
    return out;
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}
