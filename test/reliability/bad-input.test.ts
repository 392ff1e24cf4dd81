/**
 * Issue [8]: the bad-input matrix. Every bad input is generated here (bad-images.ts), fed to the
 * command line (the compiled `duo`) and to the HTTP API (the app in-process), and each must get a
 * clear error naming the file, flag or field, or a skip with its reason: no crash (exit 1 with a
 * stack, a 5xx), no hang, no index written wrong. The run writes docs/bad-input.md from what it saw.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { loadConfig } from '../../src/cli/config.js';
import { DuoError } from '../../src/errors.js';
import { openStore } from '../../src/index/open-store.js';
import { buildApp } from '../../src/serve/app.js';
import { startServer } from '../../src/serve/server.js';
import { parseSettings } from '../../src/serve/settings.js';
import { packageRoot } from '../../src/util/package-root.js';
import { CLIP, colourCollection, multipart, openEngines, type Collection } from '../serve/fixture.js';
import { writeImageCases, type ImageCase } from './bad-images.js';
import { asRoot, duo, Matrix, pool, type Run } from './matrix.js';

const SIGLIP = join(packageRoot(), 'models', 'colour-siglip');
const DOC = join(packageRoot(), 'docs', 'bad-input.md');
/** files also given to `duo search --image`: one of each way to fail, and two unusual valid ones (each CLI run costs a Node start) */
const QUERIED = ['bad/truncated.jpg', 'bad/text.jpg', 'bad/empty.png', 'bad/bomb.png', 'bad/phone.heic', 'fs/loop-a.jpg', 'fs/dangling.jpg', 'fs/unreadable.jpg', 'fs/locked/', 'odd/cmyk.jpg', 'names/line\nbreak.jpg'];
const PARTS = ['index', 'image queries', 'text queries', 'k', 'index files', 'config', 'api uploads', 'api queries'];
/** CLI runs side by side: each is mostly Node and model start-up */
const WIDTH = 2;

const IMAGES = 'Image files (in an indexed folder; as a query)';
const QUERIES = 'Text queries';
const K = 'k (results)';
const INDEXES = 'Index files';
const CONFIG = 'Config files (`--config`)';

/** Asserts a run ended as designed: its exit status, and for an error one stderr line matching `said`, no stack trace. */
function ended(r: Run, code: number, said?: RegExp, what = ''): void {
  assert.notEqual(r.code, null, `${what}: killed (${r.signal}): a hang`);
  assert.equal(r.code, code, `${what}: exit ${r.code}\n${r.stderr}`);
  assert.doesNotMatch(r.stderr, /\n\s+at |run with --debug/, `${what}: a crash\n${r.stderr}`);
  if (code !== 0) {
    assert.equal(r.stderr.trim().split('\n').length, 1, `${what}: one line\n${r.stderr}`);
    if (said) assert.match(r.stderr.trim(), said, what);
  }
}

/** Every file under a folder with its SHA-256, to show a refused write left it exactly as it was. */
function fingerprint(path: string): Record<string, string> {
  if (!existsSync(path)) return {};
  if (statSync(path).isFile()) return { '.': createHash('sha256').update(readFileSync(path)).digest('hex') };
  const out: Record<string, string> = {};
  for (const name of readdirSync(path, { recursive: true }) as string[]) {
    const file = join(path, name);
    if (statSync(file).isFile()) out[name] = createHash('sha256').update(readFileSync(file)).digest('hex');
  }
  return out;
}

/** duo-search 0.1's one-file index: "DUOINDEX" | u32 version | u32 header bytes | header JSON | pad | rows (as test/index/migrate-v1.test.ts). */
function v1Index(path: string): void {
  const rows = new Uint8Array(new Float32Array(8).fill(0.25).buffer);
  const entries = [{ id: 'a.jpg', size: 1, mtimeMs: 1 }];
  const header = { formatVersion: 1, modelId: 'colour-clip@0', modelSpec: CLIP, dim: 8, count: 1, root: '/photos', checksum: createHash('sha256').update(rows).update(JSON.stringify(entries)).digest('hex'), entries };
  const json = Buffer.from(JSON.stringify(header));
  const prefix = Buffer.alloc(16);
  prefix.write('DUOINDEX', 'latin1');
  prefix.writeUInt32LE(1, 8);
  prefix.writeUInt32LE(json.length, 12);
  writeFileSync(path, Buffer.concat([prefix, json, Buffer.alloc((4 - ((16 + json.length) % 4)) % 4), rows]));
}

describe('bad input: the command line and the API (issue [8])', () => {
  // not tempDir(): the folder must be open to the unprivileged user the permission cases run as,
  // and its mode-000 folder must be opened again before it can be removed
  const dir = mkdtempSync(join(tmpdir(), 'duo-bad-'));
  chmodSync(dir, 0o777);
  const photos = join(dir, 'photos');
  const index = join(dir, 'photos.duo');
  const matrix = new Matrix([dir]);
  let cases: ImageCase[] = [];
  let indexed: string[] = [];
  const id = (c: ImageCase) => c.file;
  const rowOf = (c: ImageCase) => `${c.label}: \`${c.file}\``;

  before(async () => {
    cases = await writeImageCases(photos);
    // root reads every file: the permission cases need the CLI run as an unprivileged user, who
    // must be able to read this checkout; where it cannot, those cases are left out (and say so)
    if (asRoot && (await duo(['--help'], { unprivileged: true })).code !== 0) {
      for (const c of cases.filter((x) => x.needsNonRoot)) rmSync(join(photos, c.file), { recursive: true, force: true });
      cases = cases.filter((x) => !x.needsNonRoot);
      matrix.note('The permission cases (an unreadable file and folder) were left out: the run was root and uid 65534 cannot read the checkout.');
    }
    for (const c of cases) matrix.row(IMAGES, rowOf(c));
    indexed = cases.filter((c) => c.expect === 'index').map(id).sort();
  });
  after(async () => {
    if (existsSync(join(photos, 'fs', 'locked'))) chmodSync(join(photos, 'fs', 'locked'), 0o755);
    rmSync(dir, { recursive: true, force: true });
    if (matrix.complete(PARTS)) await matrix.write(DOC);
  });

  it('duo index: every bad file skipped with its reason, exactly the decodable ones indexed, a valid index', async () => {
    const r = await duo(['index', photos, '--index', index, '--model', CLIP, '--json'], { unprivileged: true });
    ended(r, 0, undefined, 'duo index');
    const report = JSON.parse(r.stdout) as { encoded: number; failed: { id: string; error: string }[] };
    const skips = cases.filter((c) => c.expect === 'skip');
    assert.deepEqual(report.failed.map((f) => f.id).sort(), skips.map(id).sort(), 'the skipped files, and only they');
    for (const c of skips) {
      const f = report.failed.find((x) => x.id === c.file)!;
      assert.match(f.error, c.reason!, c.label);
      matrix.cli(IMAGES, rowOf(c), `\`duo index\`: skipped, "${matrix.shorten(f.error.replace(`${photos}/`, ''))}"`);
    }
    assert.equal(report.encoded, indexed.length);
    for (const c of cases.filter((x) => x.expect === 'index')) matrix.cli(IMAGES, rowOf(c), '`duo index`: indexed');

    // the index holds exactly the decodable files, under their ids, and nothing half-written
    const store = await openStore(index);
    const ids: string[] = [];
    for await (const item of store.list()) ids.push(item.id);
    await store.close();
    assert.deepEqual(ids.sort(), indexed);
    assert.deepEqual(readdirSync(index).sort(), ['000001.seg', 'manifest.json']);

    // a rerun retries the bad files, names each on one stderr line, and leaves the index as it was
    const before = fingerprint(index);
    const again = await duo(['index', photos, '--index', index, '--model', CLIP], { unprivileged: true });
    ended(again, 0, undefined, 'duo index, again');
    const lines = again.stderr.split('\n').filter((l) => l.startsWith('skipped '));
    assert.equal(lines.length, skips.length, again.stderr);
    for (const c of skips) assert.ok(lines.some((l) => l.startsWith(`skipped ${c.file}: `) && c.reason!.test(l)), `${c.label}\n${again.stderr}`);
    assert.deepEqual(fingerprint(index), before, 'nothing new: the index is unchanged');
    matrix.passed('index');
  });

  it('duo search --image <file>: a bad file is one error line naming it (exit 65); an unusual valid one finds itself', async () => {
    const queried = cases.filter((c) => QUERIED.includes(c.file));
    assert.equal(queried.length, QUERIED.length);
    const runs = await pool(queried, WIDTH, (c) =>
      duo(['search', '--image', join(photos, c.file), '--index', index, '--k', '50', '--json'], { unprivileged: c.needsNonRoot }),
    );
    queried.forEach((c, i) => {
      const r = runs[i]!;
      if (c.expect === 'skip') {
        // a folder given as the image is refused as such; the walk's reason is about reading it
        ended(r, 65, c.file.endsWith('/') ? /^duo: cannot read image .*fs\/locked\/?: is a folder, not a file$/ : c.reason, c.label);
      } else {
        ended(r, 0, undefined, c.label);
        const hits = (JSON.parse(r.stdout) as { results: { id: string; score: number }[] }).results;
        const self = hits.find((h) => h.id === c.file);
        assert.ok(self && self.score >= hits[0]!.score - 1e-4, `${c.label}: found first (or tied with an identical file)`);
      }
      matrix.cli(IMAGES, rowOf(c), `\`--image\`: ${matrix.describeRun(r, 'found itself first')}`);
    });
    matrix.passed('image queries');
  });

  const textCases: { label: string; text?: string; printf?: string; code: number; said?: RegExp; api: string | Buffer | undefined; status: number }[] = [
    { label: 'empty', text: '', code: 2, said: /^duo: query: is empty$/, api: JSON.stringify({ text: '' }), status: 400 },
    { label: 'whitespace only', text: ' \t \n ', code: 2, said: /^duo: query: is empty$/, api: JSON.stringify({ text: ' \t \n ' }), status: 400 },
    { label: '10,000 characters', text: 'red '.repeat(2500), code: 2, said: /^duo: query: is 10000 characters, over the limit of 2000$/, api: JSON.stringify({ text: 'red '.repeat(2500) }), status: 400 },
    { label: 'control characters around a word (BEL, ESC [31m, BS)', text: 'red\u0007\u001b[31m\u0008', code: 0, api: JSON.stringify({ text: 'red\u0007\u001b[31m\u0008' }), status: 200 },
    { label: 'control characters only', text: '\u0001\u0002\u001b\u007f', code: 2, said: /^duo: query: has no text/, api: JSON.stringify({ text: '\u0001\u0002\u001b\u007f' }), status: 400 },
    { label: 'zero-width characters only (U+200B, U+200D, U+2060)', text: '\u200b\u200d\u2060', code: 2, said: /^duo: query: has no text/, api: JSON.stringify({ text: '\u200b\u200d\u2060' }), status: 400 },
    { label: 'invalid UTF-8 only (bytes FF FE)', printf: '\\377\\376', code: 2, said: /^duo: query: has no text/, api: Buffer.concat([Buffer.from('{"text": "'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]), status: 400 },
    { label: 'invalid UTF-8 after a word (`red` FF)', printf: 'red \\377', code: 0, api: Buffer.concat([Buffer.from('{"text": "red '), Buffer.from([0xff]), Buffer.from('"}')]), status: 200 },
    { label: 'NUL only (a command line cannot carry NUL: see the --queries row)', code: -1, api: JSON.stringify({ text: '\u0000' }), status: 400 },
    { label: 'a lone UTF-16 surrogate (JSON `"\\ud800"`; argv is bytes)', code: -1, api: '{"text": "\\ud800"}', status: 400 },
  ];
  const batchRow = '`--queries` file: good lines among control-only, NUL, invalid UTF-8 and 3,000-character ones';

  it('duo search "<text>": empty, blank, long, control-character and invalid-UTF-8 queries', async () => {
    for (const q of textCases) matrix.row(QUERIES, q.label);
    matrix.row(QUERIES, batchRow);
    const run = textCases.filter((q) => q.code >= 0);
    const runs = await pool(run, WIDTH, (q) => duo(['search', '--index', index, '--k', '2', ...(q.text !== undefined ? [q.text] : [])], { printf: q.printf }));
    run.forEach((q, i) => {
      const r = runs[i]!;
      ended(r, q.code, q.said, q.label);
      // an answered query is echoed with its control characters escaped, never sent to the terminal
      if (q.code === 0) assert.match(r.stdout, /^query: red/, q.label);
      assert.doesNotMatch((r.stdout + r.stderr).replace(/[\n\t]/g, ''), /\p{Cc}/u, `${q.label}: raw control characters printed`);
      matrix.cli(QUERIES, q.label, matrix.describeRun(r, `answered (table, the query shown as "${matrix.shorten(r.stdout.split('\n')[0]!.replace(/^query: /, ''), 40)}")`));
    });
    for (const q of textCases.filter((x) => x.code < 0)) matrix.cli(QUERIES, q.label, 'n/a');

    const file = join(dir, 'queries.txt');
    writeFileSync(file, Buffer.concat([Buffer.from('red\n\u0001\u0002\n\u0000\n'), Buffer.from([0xff, 0xfe, 0x0a]), Buffer.from(`${'x'.repeat(3000)}\ngreen\n`)]));
    const b = await duo(['search', '--queries', file, '--index', index, '--k', '1', '--json']);
    ended(b, 65, /^duo: 4 of 6 queries could not be answered/, batchRow);
    const lines = b.stdout.trim().split('\n').map((l) => JSON.parse(l) as { results?: unknown[]; error?: { code: string; message: string } });
    assert.deepEqual(lines.map((l) => l.error?.code ?? 'answered'), ['answered', 'BAD_ARGUMENT', 'BAD_ARGUMENT', 'BAD_ARGUMENT', 'BAD_ARGUMENT', 'answered']);
    matrix.cli(QUERIES, batchRow, `${matrix.describeRun(b)}; one JSON line each: ${lines.map((l) => l.error ? `"${l.error.message.slice(0, 40)}"` : 'answered').join(', ')}`);
    matrix.passed('text queries');
  });

  const kCases: { k: string; code: number; said?: RegExp; api: string; status: number }[] = [
    { k: '0', code: 2, said: /^duo: --k: Too small/, api: '0', status: 400 },
    { k: '-1', code: 2, said: /^duo: --k: Too small/, api: '-1', status: 400 },
    { k: '1.5', code: 2, said: /^duo: --k: .*expected int/, api: '1.5', status: 400 },
    { k: '1e9', code: 2, said: /^duo: --k: Too big: expected number to be <=1000000/, api: '1e9', status: 400 },
    { k: '1000000', code: 0, api: '1000000', status: 400 },
    { k: 'Infinity', code: 2, said: /^duo: --k: /, api: '1e999', status: 400 },
  ];
  const kRow = (k: { k: string; api: string }) => (k.k === k.api ? `k = ${k.k}` : `k = ${k.k} (API: ${k.api})`);

  it('duo search --k: zero, negative, fractional, huge', async () => {
    const runs = await pool(kCases, WIDTH, (k) => duo(['search', 'red', '--index', index, '--k', k.k, '--json']));
    kCases.forEach((k, i) => {
      const r = runs[i]!;
      ended(r, k.code, k.said, `--k ${k.k}`);
      let summary: string | undefined;
      if (k.code === 0) {
        // a k far above the collection returns the whole collection, once
        const results = (JSON.parse(r.stdout) as { results: { id: string }[] }).results;
        assert.deepEqual(results.map((h) => h.id).sort(), indexed);
        summary = `all ${results.length} items`;
      }
      matrix.cli(K, kRow(k), matrix.describeRun(r, summary));
    });
    matrix.passed('k');
  });

  it('an index from another model, of an older or newer format, truncated or bit-flipped: refused, left unchanged', async () => {
    const variant = (name: string, damage: (path: string) => void) => {
      const path = join(dir, name);
      cpSync(index, path, { recursive: true });
      damage(path);
      return path;
    };
    const seg = (p: string) => join(p, '000001.seg');
    const legacy = join(dir, 'legacy.duo');
    v1Index(legacy);
    const damaged: { label: string; path: string; model?: string; said: RegExp; code: string }[] = [
      { label: 'built with colour-clip, used with colour-siglip', path: index, model: SIGLIP, said: /was built with model colour-clip@\w+; it cannot be queried with colour-siglip/, code: 'INDEX_MODEL_MISMATCH' },
      { label: 'format 1 (one `.duo` file, duo-search 0.1)', path: legacy, said: /legacy\.duo.*duo migrate/, code: 'INDEX_FORMAT' },
      {
        label: 'manifest of a newer format (formatVersion 3)',
        path: variant('newer.duo', (p) => writeFileSync(join(p, 'manifest.json'), readFileSync(join(p, 'manifest.json'), 'utf8').replace('"formatVersion": 2', '"formatVersion": 3'))),
        said: /newer\.duo: format version 3, this build reads 2/,
        code: 'INDEX_FORMAT',
      },
      { label: '`000001.seg` truncated to half', path: variant('truncated.duo', (p) => truncateSync(seg(p), statSync(seg(p)).size >> 1)), said: /truncated\.duo\/000001\.seg is corrupt/, code: 'INDEX_CORRUPT' },
      {
        label: '`000001.seg` with one bit flipped (in its vectors)',
        path: variant('flipped.duo', (p) => {
          const bytes = readFileSync(seg(p));
          bytes[bytes.length - 7]! ^= 0x10;
          writeFileSync(seg(p), bytes);
        }),
        said: /flipped\.duo\/000001\.seg is corrupt/,
        code: 'INDEX_CORRUPT',
      },
      {
        label: '`manifest.json` truncated',
        path: variant('cut-manifest.duo', (p) => truncateSync(join(p, 'manifest.json'), statSync(join(p, 'manifest.json')).size >> 1)),
        said: /cut-manifest\.duo\/manifest\.json is corrupt: not valid JSON/,
        code: 'INDEX_CORRUPT',
      },
    ];
    for (const d of damaged) {
      const model = d.model ? ['--model', d.model] : [];
      const before = fingerprint(d.path);
      const [search, write] = await pool(
        [['search', 'red', '--index', d.path, ...model], ['index', photos, '--index', d.path, '--model', d.model ?? CLIP]],
        WIDTH,
        (args) => duo(args),
      );
      ended(search!, 65, d.said, `search: ${d.label}`);
      ended(write!, 65, d.said, `index: ${d.label}`);
      assert.deepEqual(fingerprint(d.path), before, `${d.label}: the refused write left it as it was`);
      matrix.cli(INDEXES, d.label, `\`duo search\`: ${matrix.describeRun(search!)}; \`duo index\` on it: ${matrix.describeRun(write!)}, the index unchanged`);
      // the server opens the index before it listens: a bad one stops it starting, with the same error
      const started = startServer({ ...parseSettings(undefined, { port: 0, logLevel: 'silent' }), index: d.path, model: d.model, signals: [], webRoot: false });
      await assert.rejects(started, (e: unknown) => e instanceof DuoError && e.code === d.code && d.said.test(e.message), d.label);
      matrix.api(INDEXES, d.label, `the server does not start: ${d.code}`);
    }
    matrix.passed('index files');
  });

  const configs: { label: string; yaml: string | Buffer; search: [number, RegExp?]; serve: RegExp }[] = [
    { label: 'unknown top-level key (`colour: red`)', yaml: 'colour: red\n', search: [2, /config-1\.yaml: colour: unknown key$/], serve: /config-1\.yaml: colour: unknown key$/ },
    { label: 'unknown search key (`search.kk`)', yaml: 'search:\n  kk: 3\n', search: [2, /config-2\.yaml: search\.kk: unknown key$/], serve: /config-2\.yaml: search\.kk: unknown key$/ },
    { label: 'wrong type (`search.k: ten`)', yaml: 'search:\n  k: ten\n', search: [2, /config-3\.yaml: search\.k: .*expected number, received string$/], serve: /config-3\.yaml: search\.k: / },
    { label: 'wrong type (`index: 42`)', yaml: 'index: 42\n', search: [2, /config-4\.yaml: index: .*expected string, received number$/], serve: /config-4\.yaml: index: / },
    { label: 'wrong type (`search: [1, 2]`)', yaml: 'search: [1, 2]\n', search: [2, /config-5\.yaml: search: .*expected record, received array$/], serve: /config-5\.yaml: search: / },
    { label: 'not YAML (`search: [1, 2`)', yaml: 'search: [1, 2\n', search: [2, /config-6\.yaml: not valid YAML/], serve: /config-6\.yaml: not valid YAML/ },
    { label: 'binary bytes', yaml: Buffer.from([0x00, 0xff, 0xfe, 0x1b, 0x5b, 0x3a, 0x0a, 0x7b]), search: [2, /config-7\.yaml: /], serve: /config-7\.yaml: / },
    { label: 'unknown serve key (`serve.colour`)', yaml: 'serve:\n  colour: 1\n', search: [0], serve: /config-8\.yaml: serve\.colour: unknown key$/ },
    { label: 'wrong type (`serve.maxK: lots`)', yaml: 'serve:\n  maxK: lots\n', search: [0], serve: /config-9\.yaml: serve\.maxK: .*expected number, received string$/ },
  ];

  it('--config: unknown keys, wrong types, not YAML: exit 2 naming the file and the key, for duo search and duo serve', async () => {
    const files = configs.map((c, i) => {
      const path = join(dir, `config-${i + 1}.yaml`);
      writeFileSync(path, c.yaml);
      return path;
    });
    // duo serve itself for a few (each run starts Node); for all, what it runs first, in-process
    const served = [0, 7, 8];
    const runs = await pool(
      [...files.map((f) => ['search', 'red', '--index', index, '--config', f]), ...served.map((i) => ['serve', '--index', index, '--config', files[i]!, '--port', '0'])],
      WIDTH,
      (args) => duo(args),
    );
    configs.forEach((c, i) => {
      const search = runs[i]!;
      ended(search, c.search[0], c.search[1], `search: ${c.label}`);
      matrix.cli(CONFIG, c.label, `\`duo search\`: ${matrix.describeRun(search, 'answered (search reads only the serve section\'s type)')}`);
      const at = served.indexOf(i);
      if (at >= 0) {
        const serve = runs[files.length + at]!;
        ended(serve, 2, c.serve, `serve: ${c.label}`);
        matrix.api(CONFIG, c.label, `\`duo serve\` does not start: ${matrix.describeRun(serve)}`);
      }
      const refused = (() => {
        try {
          const config = loadConfig(files[i]);
          parseSettings(config.serve, {}, config.file);
        } catch (error) {
          return error;
        }
        return undefined;
      })();
      assert.ok(refused instanceof DuoError && refused.code === 'BAD_ARGUMENT' && c.serve.test(refused.message), `${c.label}: ${String(refused)}`);
      if (at < 0) matrix.api(CONFIG, c.label, `\`duo serve\` does not start: ${refused.code} "${matrix.shorten(refused.message)}" (its config check, in-process)`);
    });
    matrix.passed('config');
  });

  describe('API: POST /v1/search/image and /v1/search', () => {
    const apiDir = tempDirNamed(dir, 'api');
    let c: Collection;
    let engines: Awaited<ReturnType<typeof openEngines>>;
    let app: FastifyInstance;
    before(async () => {
      c = await colourCollection(apiDir);
      engines = await openEngines(c);
      app = await buildApp({ engine: engines.engine, captions: engines.captions, cacheDir: join(apiDir, 'thumbs'), webRoot: false });
    });
    after(async () => {
      await app?.close();
      await engines?.close();
    });
    /** asserts the status, and for an error the one shape with a code (and no server path) */
    const answer = (r: LightMyRequestResponse, status: number, what: string) => {
      assert.ok(r.statusCode < 500, `${what}: ${r.statusCode} ${r.body}`);
      assert.equal(r.statusCode, status, `${what}: ${r.body}`);
      if (status === 200) return '200';
      const body = r.json() as { error: { code: string; message: string; field?: string } };
      assert.deepEqual(Object.keys(body), ['error'], what);
      assert.equal(typeof body.error.code, 'string', what);
      assert.equal(typeof body.error.message, 'string', what);
      assert.ok(!body.error.message.includes(dir), `${what}: a server path in ${body.error.message}`);
      return `${r.statusCode} ${body.error.code}${body.error.field ? ` (field ${body.error.field})` : ''}`;
    };

    it('uploads of every generated file: 200 for the valid ones, a 4xx naming the image for the rest', async () => {
      for (const k of cases) {
        if (!k.bytes) {
          matrix.api(IMAGES, rowOf(k), 'n/a (no bytes to upload)');
          continue;
        }
        // a browser writes a line break or quote in a file name as %0A, %0D, %22 (the HTML form encoding)
        const name = k.file.split('/').pop()!.replace(/\n/g, '%0A').replace(/\r/g, '%0D').replace(/"/g, '%22');
        const r = await app.inject({ method: 'POST', url: '/v1/search/image', ...multipart({ k: '3' }, [['image', k.bytes, name, 'application/octet-stream']]) });
        const [status, code] = k.api ?? (k.expect === 'index' ? [200, ''] : [422, 'BAD_IMAGE']);
        const seen = answer(r, status, k.label);
        if (status !== 200) {
          assert.equal((r.json() as { error: { code: string; field?: string } }).error.code, code, k.label);
          assert.equal((r.json() as { error: { field?: string } }).error.field, 'image', k.label);
        }
        matrix.api(IMAGES, rowOf(k), seen);
      }
      matrix.passed('api uploads');
    });

    it('text queries and k values: a 400 naming the field, never a 5xx', async () => {
      for (const q of textCases) {
        const r = await app.inject({ method: 'POST', url: '/v1/search', payload: q.api, headers: { 'content-type': 'application/json' } });
        const seen = answer(r, q.status, q.label);
        if (q.status === 400) assert.equal((r.json() as { error: { field?: string } }).error.field, 'text', q.label);
        matrix.api(QUERIES, q.label, seen);
      }
      matrix.api(QUERIES, batchRow, 'n/a (one query a request)');
      for (const k of kCases) {
        const r = await app.inject({ method: 'POST', url: '/v1/search', payload: `{"text": "red", "k": ${k.api}}`, headers: { 'content-type': 'application/json' } });
        const seen = answer(r, k.status, `k ${k.api}`);
        assert.equal((r.json() as { error: { field?: string } }).error.field, 'k', `k ${k.api}`);
        matrix.api(K, kRow(k), `${seen}${k.k === '1000000' ? ': over the server’s --max-k (100)' : ''}`);
      }
      matrix.passed('api queries');
    });
  });
});

/** A folder inside `parent` (removed with it). */
function tempDirNamed(parent: string, name: string): string {
  const path = join(parent, name);
  mkdirSync(path, { recursive: true });
  return path;
}
