/**
 * Reads the float initializers (weights) back out of ONNX ModelProto bytes: the inverse of
 * writer.ts for the one thing the runtime needs, so a graph the project wrote can be rebuilt
 * around its own weights (the starter text model with an open vocabulary) without shipping
 * them twice. Field numbers follow onnx/onnx.proto; only float, float16 and int8 raw_data and
 * packed float_data tensors are read, as writer.ts and the ONNX exporters write them.
 *
 * The bytes are untrusted (a pack's file, possibly truncated or damaged): every read is checked
 * against the end of its message and a damaged file throws rather than reading `undefined` bytes,
 * which made varint() loop forever and hung the load of a pack with an open vocabulary.
 */
import { readFile } from 'node:fs/promises';
import { createError } from '../errors.js';
import { halfToFloat } from '../util/float16.js';

export interface Initializer {
  dims: number[];
  data: Float32Array;
}

class Reader {
  pos: number;
  constructor(private readonly buf: Uint8Array, start = 0, readonly end = buf.length) {
    this.pos = start;
  }
  varint(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      if (this.pos >= this.end) throw new Error('a varint runs past the end');
      // 7 bits a byte: past 49 bits of shift the value is no length or number ONNX holds (and is
      // beyond what a double adds exactly)
      if (shift > 49) throw new Error('a varint is too long');
      const byte = this.buf[this.pos++]!;
      result += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return result;
      shift += 7;
    }
  }
  /** Calls `field(number, wire, reader)` for each field; the callback reads or leaves the value. */
  fields(field: (n: number, wire: number) => void): void {
    while (this.pos < this.end) {
      const tag = this.varint();
      const at = this.pos;
      field(Math.floor(tag / 8), tag & 7);
      if (this.pos === at) this.skip(tag & 7);
    }
  }
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.advance(8);
    else if (wire === 2) this.advance(this.varint());
    else if (wire === 5) this.advance(4);
    else throw new Error(`wire type ${wire}`);
  }
  private advance(n: number): number {
    const start = this.pos;
    if (start + n > this.end) throw new Error(`a field of ${n} bytes runs past the end`);
    this.pos += n;
    return start;
  }
  /** A length-delimited value's [start, end). */
  span(): [number, number] {
    const n = this.varint();
    const start = this.advance(n);
    return [start, start + n];
  }
  sub([start, end]: [number, number]): Reader {
    return new Reader(this.buf, start, end);
  }
  bytes([start, end]: [number, number]): Uint8Array {
    return this.buf.subarray(start, end);
  }
}

const FLOAT = 1;
const INT8 = 3;
const FLOAT16 = 10;

export function readInitializers(model: Uint8Array): Map<string, Initializer> {
  const out = new Map<string, Initializer>();
  const top = new Reader(model);
  top.fields((n, wire) => {
    if (n !== 7 || wire !== 2) return;
    const graph = top.sub(top.span());
    graph.fields((g, gw) => {
      if (g !== 5 || gw !== 2) return;
      const t = graph.sub(graph.span());
      const dims: number[] = [];
      let type = 0;
      let name = '';
      let raw: Uint8Array | undefined;
      let floats: Uint8Array | undefined;
      t.fields((f, w) => {
        if (f === 1 && w === 0) dims.push(t.varint());
        else if (f === 1 && w === 2) {
          const d = t.sub(t.span());
          while (d.pos < d.end) dims.push(d.varint());
        } else if (f === 2 && w === 0) type = t.varint();
        else if (f === 8 && w === 2) name = new TextDecoder().decode(t.bytes(t.span()));
        else if (f === 9 && w === 2) raw = t.bytes(t.span());
        else if (f === 4 && w === 2) floats = t.bytes(t.span());
      });
      const bytes = raw ?? floats;
      if ((type !== FLOAT && type !== FLOAT16 && type !== INT8) || !bytes) return;
      const count = dims.reduce((a, b) => a * b, 1);
      const width = type === FLOAT ? 4 : type === FLOAT16 ? 2 : 1;
      if (bytes.length !== width * count) throw new Error(`initializer ${name || '(unnamed)'} has ${bytes.length} bytes, not ${count} values of ${width} bytes of [${dims.join(', ')}]`);
      if (type === INT8) {
        // int8 codes (a compact pack's word vectors; their scales are a float initializer beside them): the codes as numbers
        out.set(name, { dims, data: Float32Array.from(new Int8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)) });
        return;
      }
      if (type === FLOAT16) {
        // a pack stored at half precision (export-pack's --half): read back as the float32 values the runtime computes with
        const halves = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        const data = new Float32Array(count);
        for (let i = 0; i < count; i++) data[i] = halfToFloat(halves.getUint16(2 * i, true));
        out.set(name, { dims, data });
        return;
      }
      // a copy (Buffer.slice would be a view): aligned, and independent of the model bytes
      const copy = new Uint8Array(bytes.length);
      copy.set(bytes);
      out.set(name, { dims, data: new Float32Array(copy.buffer) });
    });
  });
  return out;
}

/**
 * readInitializers of the file at `path`: a missing file is FILE_NOT_FOUND, one that cannot be
 * read (truncated, damaged) MODEL_UNSUPPORTED naming it, instead of a bare RangeError.
 */
export async function readInitializersFile(path: string): Promise<Map<string, Initializer>> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch {
    throw createError('FILE_NOT_FOUND', path);
  }
  try {
    return readInitializers(bytes);
  } catch (error) {
    throw createError('MODEL_UNSUPPORTED', path, `cannot read its weights: ${(error as Error).message}`);
  }
}
