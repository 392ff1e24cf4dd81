/**
 * Random and mutated requests for the HTTP fuzz test (./http-fuzz.test.ts), reproducible from a
 * seed. Bodies and query strings start valid, generated from the server's own OpenAPI document
 * (GET /openapi.json), and are then mutated: wrong types, missing required fields, extra and
 * giant keys, extreme numbers written as raw JSON tokens, deep nesting, long and broken strings,
 * invalid UTF-8 bytes, truncation, wrong content types; multipart bodies are taken apart (no
 * boundary, two files, an empty file, bytes that are no image, a header that claims a huge
 * image, giant field names); ids carry path tricks (`..%2f`, absolute paths, NUL, double
 * encoding, backslashes); a few requests are not even valid HTTP.
 */
import { seeded } from '../../src/util/random.js';
import type { Sent } from './http-client.js';

/** Random choices over the project's seeded generator (src/util/random.ts: mulberry32, the same on every platform). */
export class Rng {
  readonly next: () => number;
  constructor(seed: number) {
    this.next = seeded(seed);
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  /** one of the weighted choices: [weight, value] */
  weighted<T>(choices: readonly [number, T][]): T {
    let r = this.next() * choices.reduce((n, [w]) => n + w, 0);
    for (const [w, v] of choices) if ((r -= w) < 0) return v;
    return choices[choices.length - 1]![1];
  }
}

// ---- JSON Schema (OpenAPI 3.1) → a valid value

export interface JsonSchema {
  $ref?: string;
  type?: string | string[];
  enum?: unknown[];
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  minItems?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minLength?: number;
  maxLength?: number;
  format?: string;
}

export interface OpenApi {
  paths: Record<string, Record<string, { parameters?: { in: string; name: string; required?: boolean; schema: JsonSchema }[]; requestBody?: { content: Record<string, { schema: JsonSchema }> } }>>;
  components?: { schemas?: Record<string, JsonSchema> };
}

const WORDS = ['a', 'red', 'green', 'blue', 'yellow', 'white', 'black', 'photo', 'of', 'the', 'dog', 'sky', 'square', 'something', 'warm', 'cold'];
const KEYS = ['id', 'bytes', 'modified', 'mtimeMs', 'colour', 'album', 'text'];

function resolve(doc: OpenApi, s: JsonSchema): JsonSchema {
  if (!s.$ref) return s;
  const name = s.$ref.replace('#/components/schemas/', '');
  return doc.components?.schemas?.[name] ?? {};
}

/** A value the schema accepts (mostly: `where` keys and values are drawn from what the collection holds). */
export function validValue(doc: OpenApi, schema: JsonSchema, rng: Rng, name = '', depth = 0): unknown {
  const s = resolve(doc, schema);
  if (s.enum) return rng.pick(s.enum);
  const alternatives = s.anyOf ?? s.oneOf;
  if (alternatives) return validValue(doc, rng.pick(alternatives), rng, name, depth + 1);
  const type = Array.isArray(s.type) ? rng.pick(s.type) : (s.type ?? (s.properties ? 'object' : 'string'));
  switch (type) {
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const [key, sub] of Object.entries(s.properties ?? {})) {
        if (s.required?.includes(key) || rng.chance(0.4)) out[key] = validValue(doc, sub, rng, key, depth + 1);
      }
      if (typeof s.additionalProperties === 'object' && depth < 4) {
        for (let i = rng.int(3); i > 0; i--) out[rng.pick(KEYS)] = validValue(doc, s.additionalProperties, rng, '', depth + 1);
      }
      return out;
    }
    case 'array': {
      const n = Math.max(s.minItems ?? 0, rng.int(4));
      return Array.from({ length: n }, () => validValue(doc, s.items ?? {}, rng, '', depth + 1));
    }
    case 'integer':
    case 'number': {
      const low = s.minimum ?? (s.exclusiveMinimum !== undefined ? s.exclusiveMinimum + (type === 'integer' ? 1 : 1e-3) : 0);
      const high = s.maximum ?? low + 100;
      // mostly small values (a server answers those), sometimes the edges
      const span = Math.min(high - low, rng.chance(0.8) ? 20 : high - low);
      const v = rng.chance(0.1) ? rng.pick([low, high]) : low + rng.next() * span;
      return type === 'integer' ? Math.round(v) : v;
    }
    case 'boolean':
      return rng.chance(0.5);
    case 'null':
      return null;
    default: {
      if (name === 'text') return Array.from({ length: 1 + rng.int(4) }, () => rng.pick(WORDS)).join(' ');
      if (name === 'where') return JSON.stringify({ [rng.pick(KEYS)]: rng.pick([1, 'warm/', { prefix: 'warm/' }, { gte: '2020-01-01' }, { in: ['a', 2] }]) });
      const n = Math.max(s.minLength ?? 0, 1 + rng.int(8));
      return rng.pick(['warm/', '2024-01-01', 'x'.repeat(Math.min(n, s.maxLength ?? n)), rng.pick(WORDS)]);
    }
  }
}

// ---- mutations

/** A JSON token written as is (1e999, -0, NaN): JSON.stringify cannot write them */
class Raw {
  constructor(readonly text: string) {}
}

/** JSON text of a value that may hold Raw tokens, and keys JSON.stringify would drop (`__proto__` as an own key). */
function serialise(v: unknown): string {
  if (v instanceof Raw) return v.text;
  if (Array.isArray(v)) return `[${v.map(serialise).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.entries(v)
      .map(([k, x]) => `${JSON.stringify(k)}:${serialise(x)}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

const EXTREME_NUMBERS = ['1e308', '-1e308', '1e999', '-1e999', '-0', '9007199254740993', '0.5', '1e-400', '-1', '0', '4294967297', '"NaN"', '"Infinity"', '"10"', '"0x10"', '" 5 "', 'NaN', 'Infinity', '01', '1.', '.5', '+1'];
const WRONG_TYPES: unknown[] = [null, true, false, 0, -1, 'x', '', [], {}, [1, 2], { a: 1 }, [[[]]], 'true', '1'];

function longString(rng: Rng): string {
  return rng.weighted<() => string>([
    [3, () => 'red '.repeat(126)], // just over 500 characters
    [2, () => 'a'.repeat(5_000 + rng.int(50_000))], // over the query limit, under the body limit
    [1, () => 'b'.repeat(70_000)], // over the 64 KiB body limit
    [2, () => '🟥'.repeat(300)], // astral characters: 600 UTF-16 units
    [2, () => 'red\u0000photo\u0007\u001b[31m\u202e'],
    [2, () => 'ｒｅｄ ﬁ İ ß \u0301\u0301\u0301'],
  ])();
}

/** JSON text with a lone surrogate, escaped (valid JSON, invalid Unicode) */
const LONE_SURROGATES = ['"\\ud800"', '"red \\udfff"', '"\\ud83d\\u0000"'];

function deep(rng: Rng): Raw {
  const depth = rng.pick([64, 1_000, 10_000, 40_000]);
  return rng.chance(0.5) ? new Raw(`${'['.repeat(depth)}${']'.repeat(depth)}`) : new Raw(`${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`);
}

function giantKey(rng: Rng): string {
  return rng.weighted<string>([
    [2, 'x'.repeat(10_000)],
    [2, '__proto__'],
    [2, 'constructor'],
    [1, 'prototype'],
    [2, ''],
    [1, 'k\u0000'],
    [1, 'rerankBatchSize'],
    [1, '$where'],
  ]);
}

/** One change to an object: the key it touched and the new value (undefined: removed). */
export function mutateObject(o: Record<string, unknown>, rng: Rng, required: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = { ...o };
  const keys = Object.keys(out);
  const key = keys.length > 0 ? rng.pick(keys) : 'text';
  rng.weighted<() => void>([
    [3, () => delete out[rng.chance(0.7) && required.length > 0 ? rng.pick(required) : key]],
    [4, () => (out[key] = rng.pick(WRONG_TYPES))],
    // defined, not assigned: `__proto__` must become an own key, not the object's prototype
    [3, () => Object.defineProperty(out, rng.chance(0.5) ? giantKey(rng) : `extra${rng.int(100)}`, { value: rng.pick(WRONG_TYPES), enumerable: true, writable: true, configurable: true })],
    [4, () => (out[rng.pick(['k', 'k1', 'offset', 'alpha', 'rrfK', 'mmr', 'budgetMs'])] = new Raw(rng.pick(EXTREME_NUMBERS)))],
    [3, () => (out[rng.chance(0.7) ? 'text' : key] = longString(rng))],
    [1, () => (out.text = new Raw(rng.pick(LONE_SURROGATES)))],
    [2, () => (out[rng.chance(0.6) ? 'where' : key] = deep(rng))],
    [
      3,
      () =>
        (out.where = rng.pick<unknown>([
          { '': 1 },
          { id: { prefix: '../' } },
          { bytes: { gte: 'yesterday' } },
          { modified: { gte: '2024-99-99' } },
          { colour: { in: [] } },
          { colour: { in: [null] } },
          { bytes: {} },
          { bytes: { gt: 1, lt: 0, extra: 2 } },
          Object.fromEntries(Array.from({ length: 2_000 }, (_, i) => [`k${i}`, i])),
          'not an object',
          [{ id: 'x' }],
          new Raw('{"a":1,"a":2}'),
          new Raw('{"__proto__":{"polluted":true}}'),
          new Raw('{"constructor":{"prototype":{"polluted":true}}}'),
        ])),
    ],
    [1, () => (out.mode = rng.pick(['Hybrid', 'stage2', 'HYBRID ', '', 'stage1\u0000']))],
  ])();
  return out;
}

// ---- JSON bodies on the wire

const JSON_TYPES = ['application/json', 'application/json; charset=utf-8'];
const WRONG_CONTENT_TYPES = ['text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=utf-16', 'application/jsonx', 'multipart/form-data', 'application/octet-stream', '', ';;;', 'application/json, text/plain', 'application/json; charset=latin1'];

/** A body's bytes: the JSON text, sometimes damaged on the way */
function jsonBytes(text: string, rng: Rng): { body: Buffer; type: string | undefined } {
  let body = Buffer.from(text, 'utf8');
  rng.weighted<() => void>([
    [10, () => {}],
    [2, () => (body = body.subarray(0, rng.int(body.length)))], // truncated
    [
      2,
      () => {
        // invalid UTF-8 inside the first string: a lone continuation byte, an overlong '/', a cut sequence
        const at = body.indexOf('"') + 1;
        body = Buffer.concat([body.subarray(0, at), Buffer.from(rng.pick([[0xff], [0xc0, 0xaf], [0xe2, 0x82], [0xed, 0xa0, 0x80], [0x80]])), body.subarray(at)]);
      },
    ],
    [1, () => (body = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), body]))], // a BOM
    [1, () => (body = Buffer.concat([body, Buffer.from(rng.pick(['}', ' garbage', '\u0000', ',{}']))]))],
    [1, () => (body = Buffer.from(rng.pick(['', 'null', '"red"', '123', '[]', 'true', '{}', '{', 'NaN'])))],
  ])();
  const type = rng.chance(0.85) ? rng.pick(JSON_TYPES) : rng.chance(0.8) ? rng.pick(WRONG_CONTENT_TYPES) : undefined;
  return { body, type };
}

// ---- multipart bodies

interface Part {
  name?: string;
  filename?: string;
  type?: string;
  data: Buffer;
}

function multipartBody(parts: Part[], boundary: string, close = true): Buffer {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const disposition = p.name === undefined ? '' : `Content-Disposition: form-data; name="${p.name}"${p.filename !== undefined ? `; filename="${p.filename}"` : ''}\r\n`;
    chunks.push(Buffer.from(`--${boundary}\r\n${disposition}${p.type ? `Content-Type: ${p.type}\r\n` : ''}\r\n`), p.data, Buffer.from('\r\n'));
  }
  if (close) chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(chunks);
}

export interface Images {
  jpeg: Buffer;
  png: Buffer;
  /** a PNG header claiming 60,000 × 60,000 pixels (over the pixel limit), no real data */
  bomb: Buffer;
}

function imagePart(rng: Rng, images: Images): Part {
  return rng.weighted<Part>([
    [6, { name: 'image', filename: 'q.jpg', type: 'image/jpeg', data: images.jpeg }],
    [2, { name: 'image', filename: 'q.png', type: 'image/png', data: images.png }],
    [1, { name: 'image', filename: 'q.jpg', type: 'image/jpeg', data: Buffer.alloc(0) }],
    [1, { name: 'image', filename: 'q.jpg', type: 'image/jpeg', data: Buffer.from('not an image at all') }],
    [1, { name: 'image', filename: 'q.jpg', type: 'image/jpeg', data: images.jpeg.subarray(0, Math.floor(images.jpeg.length / 2)) }],
    [1, { name: 'image', filename: 'bomb.png', type: 'image/png', data: images.bomb }],
    [1, { name: 'image', filename: '../../etc/passwd', type: 'text/plain', data: Buffer.from('not a password file') }],
    [1, { name: 'image', filename: 'q.svg', type: 'image/svg+xml', data: Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="99999" height="99999"><image href="file:///etc/passwd"/></svg>') }],
    [1, { name: 'image', filename: 'q.bin', data: Buffer.from(Array.from({ length: 256 }, (_, i) => (i * 37) & 0xff)) }],
  ]);
}

function formFields(doc: OpenApi, path: string, rng: Rng): Part[] {
  const schema = resolve(doc, doc.paths[path]!.post!.requestBody!.content['multipart/form-data']!.schema);
  const valid = validValue(doc, schema, rng) as Record<string, unknown>;
  delete valid.image;
  const fields = rng.chance(0.5) ? mutateObject(valid, rng, []) : valid;
  return Object.entries(fields).map(([name, v]) => ({ name, data: Buffer.from(v instanceof Raw ? v.text : typeof v === 'string' ? v : JSON.stringify(v) ?? '') }));
}

function uploadRequest(doc: OpenApi, path: string, rng: Rng, images: Images): Sent {
  const boundary = `----fuzz${rng.int(1e9)}`;
  const fields = formFields(doc, path, rng);
  const image = imagePart(rng, images);
  const build = rng.weighted<() => { body: Buffer; type: string | undefined }>([
    [8, () => ({ body: multipartBody([...fields, image], boundary), type: `multipart/form-data; boundary=${boundary}` })],
    [1, () => ({ body: multipartBody([image], boundary), type: 'multipart/form-data' })], // no boundary parameter
    [1, () => ({ body: multipartBody([image], boundary), type: 'multipart/form-data; boundary=other' })],
    [1, () => ({ body: multipartBody([image, image], boundary), type: `multipart/form-data; boundary=${boundary}` })], // two files
    [1, () => ({ body: multipartBody([{ ...image, name: 'picture' }], boundary), type: `multipart/form-data; boundary=${boundary}` })],
    [1, () => ({ body: multipartBody([...fields], boundary), type: `multipart/form-data; boundary=${boundary}` })], // no file
    [1, () => ({ body: multipartBody([{ name: 'x'.repeat(20_000), data: Buffer.from('1') }, image], boundary), type: `multipart/form-data; boundary=${boundary}` })],
    [1, () => ({ body: multipartBody(Array.from({ length: 40 }, (_, i) => ({ name: `f${i}`, data: Buffer.from('1') })), boundary), type: `multipart/form-data; boundary=${boundary}` })],
    [1, () => ({ body: multipartBody([{ name: 'k', data: Buffer.from('9'.repeat(20_000)) }, image], boundary), type: `multipart/form-data; boundary=${boundary}` })],
    [1, () => ({ body: multipartBody([{ data: Buffer.from('no disposition') }, image], boundary), type: `multipart/form-data; boundary=${boundary}` })],
    [1, () => ({ body: multipartBody([{ name: '\u00ff\u00fe', data: Buffer.from([0xff, 0xfe, 0x00]) }, image], boundary), type: `multipart/form-data; boundary=${boundary}` })],
    [2, () => ({ body: multipartBody([...fields, image], boundary, false), type: `multipart/form-data; boundary=${boundary}` })], // never closed
    [
      2,
      () => {
        const whole = multipartBody([...fields, image], boundary);
        return { body: whole.subarray(0, rng.int(whole.length)), type: `multipart/form-data; boundary=${boundary}` };
      },
    ],
    [1, () => ({ body: Buffer.alloc(0), type: `multipart/form-data; boundary=${boundary}` })],
    [1, () => ({ body: Buffer.from('--\r\n\r\n--'), type: `multipart/form-data; boundary=` })],
    [1, () => ({ body: images.jpeg, type: 'image/jpeg' })], // the bare file
    [1, () => ({ body: Buffer.from('{"image":"aGVsbG8="}'), type: 'application/json' })],
    [1, () => ({ body: multipartBody([image], boundary), type: `multipart/mixed; boundary=${boundary}` })],
  ])();
  return { method: 'POST', path, headers: build.type === undefined ? {} : { 'content-type': build.type }, body: build.body };
}

// ---- ids with path tricks

export interface Target {
  doc: OpenApi;
  /** ids the index holds */
  ids: string[];
  images: Images;
  /** the sentinel file's absolute path (outside the collection's root) */
  sentinel: string;
  /** its path relative to the collection's root (../secret.txt) */
  sentinelRelative: string;
  /** the web page is built (dist/web): without it, GET / is a 503 that says so */
  web: boolean;
}

const enc = (s: string) => encodeURIComponent(s);

function trickyId(rng: Rng, t: Target): string {
  const rel = t.sentinelRelative;
  return rng.weighted<() => string>([
    [8, () => enc(rng.pick(t.ids))],
    [2, () => rng.pick(t.ids)], // the slash unencoded: another route, or none
    [2, () => enc(rel)],
    [1, () => rel.split('/').map(enc).join('%2f')],
    [1, () => '..%2f..%2f..%2f..%2fetc%2fpasswd'],
    [1, () => '%2e%2e%2f%2e%2e%2fetc%2fpasswd'],
    [1, () => '%2e%2e/%2e%2e/etc/passwd'],
    [2, () => enc(t.sentinel)], // an absolute path
    [1, () => '%2Fetc%2Fpasswd'],
    [1, () => enc(`${rng.pick(t.ids)}\u0000.txt`)],
    [1, () => '%00'],
    [1, () => enc(`warm/../${rel}`)],
    [1, () => enc(rel).replace(/%/g, '%25')], // encoded twice
    [1, () => '..%255c..%255csecret.txt'],
    [1, () => enc(rel.replace(/\//g, '\\'))], // backslashes
    [1, () => '..\\..\\secret.txt'],
    [1, () => enc(`file://${t.sentinel}`)],
    [1, () => enc(rng.pick(t.ids).toUpperCase())],
    [1, () => enc(`./${rng.pick(t.ids)}`)],
    [1, () => enc(`${rng.pick(t.ids)}/`)],
    [1, () => '.'],
    [1, () => '..'],
    [1, () => '%c0%ae%c0%ae%2fsecret.txt'], // overlong UTF-8 dots
    [1, () => '%e0%a4%a'], // a cut escape
    [1, () => '%zz'],
    [1, () => 'x'.repeat(rng.pick([4_096, 4_097, 6_000]))],
    [1, () => 'y'.repeat(20_000)], // a request line over the header limit
    [1, () => enc('🟥/../../secret.txt')],
  ])();
}

function queryString(doc: OpenApi, path: string, rng: Rng): string {
  const params = (doc.paths[path]?.get?.parameters ?? []).filter((p) => p.in === 'query');
  const pairs: [string, string][] = [];
  for (const p of params) {
    if (p.required || rng.chance(0.5)) {
      const v = validValue(doc, p.schema, rng, p.name);
      pairs.push([p.name, typeof v === 'string' ? v : JSON.stringify(v)]);
    }
  }
  if (rng.chance(0.5)) {
    rng.weighted<() => void>([
      [3, () => pairs.push([rng.pick(params)?.name ?? 'k', rng.pick(EXTREME_NUMBERS.map((n) => n.replace(/"/g, '')))])],
      [2, () => pairs.push([rng.pick(params)?.name ?? 'k', rng.pick(['', 'abc', 'true', '[]', '{}', '1,2', ' '])])],
      [2, () => pairs.push([`extra${rng.int(10)}`, '1'])],
      [1, () => pairs.push(['size[]', '128'])],
      [1, () => pairs.push(['where', rng.pick(['{', '{"id":{"prefix":"../"}}', '[]', 'null', '{"bytes":{"gte":"x"}}', JSON.stringify(Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`k${i}`, i])))])])],
      [1, () => pairs.push(['__proto__', '1'], ['constructor', 'x'])],
      [1, () => pairs.push(...pairs.slice(0, 1))], // a key twice
    ])();
  }
  const text = pairs.map(([k, v]) => `${enc(k)}=${enc(v)}`).join('&');
  if (rng.chance(0.05)) return `?${rng.pick(['%zz', '%ff%fe', 'k=%', '&&&', '=1', 'k=1;k=2', 'size=%00'])}`;
  return text ? `?${text}` : '';
}

// ---- raw requests (not valid HTTP, or valid HTTP no client library would write)

function rawRequest(rng: Rng, t: Target): Buffer {
  const rel = t.sentinelRelative;
  const text = rng.pick([
    'GARBAGE\r\n\r\n',
    'GET /v1/health HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n',
    `GET /v1/images/../../${rel} HTTP/1.1\r\nHost: x\r\n\r\n`,
    `GET /v1/images/..\\..\\${rel} HTTP/1.1\r\nHost: x\r\n\r\n`,
    `GET /../../${rel} HTTP/1.1\r\nHost: x\r\n\r\n`,
    'GET /..%2f..%2fpackage.json HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET /%2e%2e/%2e%2e/package.json HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET /v1/items/a\u0000b HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET http://elsewhere/v1/health HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET /v1/health HTTP/1.0\r\n\r\n',
    'GET /v1/health HTTP/9.9\r\nHost: x\r\n\r\n',
    `GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Big: ${'z'.repeat(20_000)}\r\n\r\n`,
    'POST /v1/search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n',
    'POST /v1/search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n{"a":1}',
    'POST /v1/search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    'POST /v1/search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: -1\r\n\r\n',
    'POST /v1/search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 14\r\n\r\n{"text":"red"}trailing bytes',
    'POST /v1/search/image HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n--b\r\n\r\n0\r\n\r\n',
    'DELETE /v1/items/warm%2Fred.jpg HTTP/1.1\r\nHost: x\r\n\r\n',
    'PROPFIND / HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET\t/v1/health HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET /v1/health HTTP/1.1\nHost: x\n\n',
  ]);
  return Buffer.from(text, 'latin1');
}

// ---- a request

export type FuzzCase = { kind: string; request: Sent } | { kind: string; raw: Buffer };

const GET = (path: string, headers: Record<string, string> = {}): Sent => ({ method: 'GET', path, headers });

export function fuzzCase(rng: Rng, t: Target): FuzzCase {
  const { doc } = t;
  return rng.weighted<() => FuzzCase>([
    [
      26,
      () => {
        const schema = resolve(doc, doc.paths['/v1/search']!.post!.requestBody!.content['application/json']!.schema);
        let body = validValue(doc, schema, rng) as Record<string, unknown>;
        for (let n = rng.weighted([[2, 0], [5, 1], [2, 2], [1, 3]] as [number, number][]); n > 0; n--) body = mutateObject(body, rng, schema.required ?? []);
        const { body: bytes, type } = jsonBytes(serialise(body), rng);
        return { kind: 'POST /v1/search', request: { method: rng.chance(0.97) ? 'POST' : rng.pick(['PUT', 'GET', 'PATCH']), path: '/v1/search', headers: type === undefined ? {} : { 'content-type': type }, body: bytes } };
      },
    ],
    [14, () => ({ kind: 'POST /v1/search/image', request: uploadRequest(doc, '/v1/search/image', rng, t.images) })],
    [5, () => ({ kind: 'POST /v1/captions/search', request: uploadRequest(doc, '/v1/captions/search', rng, t.images) })],
    [8, () => ({ kind: 'GET /v1/items/{id}', request: GET(`/v1/items/${trickyId(rng, t)}`) })],
    [12, () => ({ kind: 'GET /v1/items/{id}/similar', request: GET(`/v1/items/${trickyId(rng, t)}/similar${queryString(doc, '/v1/items/{id}/similar', rng)}`) })],
    [9, () => ({ kind: 'GET /v1/images/{id}', request: { method: rng.chance(0.85) ? 'GET' : 'HEAD', path: `/v1/images/${trickyId(rng, t)}`, headers: rng.chance(0.1) ? { 'if-none-match': '"x"', range: 'bytes=0-10' } : {} } })],
    [10, () => ({ kind: 'GET /v1/images/{id}/thumbnail', request: GET(`/v1/images/${trickyId(rng, t)}/thumbnail${queryString(doc, '/v1/images/{id}/thumbnail', rng)}`) })],
    [
      4,
      () => ({
        kind: 'status',
        request: GET(rng.pick(['/v1/health', '/v1/ready', '/v1/collection', '/metrics', '/openapi.json', '/v1/health?x=%ff', '/v1/collection/', '//v1/health'])),
      }),
    ],
    [
      4,
      () => ({
        kind: 'static and unknown',
        request: {
          method: rng.pick(['GET', 'GET', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'HEAD']),
          path: rng.pick([t.web ? '/' : '/index.html', '/index.html', '/main.js', '/..%2f..%2fpackage.json', '/%2e%2e/%2e%2e/package.json', `/${encodeURIComponent(t.sentinel)}`, '/v2/search', '/v1', '/v1/', '/v1/items', '/v1/items/', '/v1/images/', '/%00', '/favicon.ico', '/.env', '/index.html%00.js', '/web/../../package.json']),
        },
      }),
    ],
    [4, () => ({ kind: 'raw', raw: rawRequest(rng, t) })],
  ])();
}
