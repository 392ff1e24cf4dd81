/**
 * The package as npm consumers get it: compiled JavaScript in dist/, imported by a plain Node ESM
 * project through `exports`, and the `duo` bin, with no tsx anywhere in those processes.
 * `npm test` builds before the unit tests; run alone, this file builds first when dist/ is
 * missing or older than src/.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { packageRoot } from '../../src/util/package-root.js';
import { COLOURS, tempDir, writeColourImage } from '../helpers.js';

const ROOT = packageRoot();

/**
 * The names a consumer imports from 'duo-search'; each must exist at run time and in the types.
 * One name a line: when src/index.ts gains an export, add its line (openEngine: uncomment it).
 */
const EXPORTS = [
  'Predictor',
  'loadEncoder',
  'defaultModelPath',
  'loadReranker',
  'SearchEngine',
  'ExactStore',
  'FolderStore',
  'storeOptionsFor',
  'openStore',
  'buildIndex',
  'buildCaptionIndex',
  'readCaptionFile',
  'evaluateRetrieval',
  'DuoError',
  'openEngine',
  'parseSearchOptions',
];

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs plain `node` (no --import tsx, no NODE_OPTIONS inherited from the test runner). */
async function node(args: string[], cwd: string): Promise<Result> {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, args, { cwd, env, maxBuffer: 16 << 20 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** Newest modification time of a folder's files and sub-folders (a deletion changes its folder's time). */
function newestMtime(dir: string): number {
  let newest = statSync(dir).mtimeMs;
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    newest = Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
}

function distIsCurrent(): boolean {
  const built = join(ROOT, 'dist', 'index.js');
  if (!existsSync(built)) return false;
  const sources = Math.max(newestMtime(join(ROOT, 'src')), statSync(join(ROOT, 'tsconfig.build.json')).mtimeMs, statSync(join(ROOT, 'scripts', 'build.mjs')).mtimeMs);
  return statSync(built).mtimeMs >= sources;
}

describe('the npm package (dist, exports, bin) without tsx', () => {
  const consumer = tempDir('duo-consumer-');
  const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    exports: { '.': { types: string; import: string } };
    bin: { duo: string };
    dependencies: Record<string, string>;
  };

  before(async () => {
    if (!distIsCurrent()) {
      const r = await node([join(ROOT, 'scripts', 'build.mjs')], ROOT);
      assert.equal(r.code, 0, `npm run build failed:\n${r.stdout}${r.stderr}`);
    }
    writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'duo-consumer', private: true, type: 'module' }));
    mkdirSync(join(consumer, 'node_modules'));
    symlinkSync(ROOT, join(consumer, 'node_modules', 'duo-search'), process.platform === 'win32' ? 'junction' : 'dir');
  });

  it('exports and bin point at compiled JavaScript, with declarations; tsx is only a devDependency', () => {
    const entry = manifest.exports['.'];
    assert.match(entry.import, /^\.\/dist\/.+\.js$/);
    assert.match(entry.types, /^\.\/dist\/.+\.d\.ts$/);
    assert.ok(existsSync(join(ROOT, entry.import)), entry.import);
    assert.ok(existsSync(join(ROOT, entry.types)), entry.types);
    const types = readFileSync(join(ROOT, entry.types), 'utf8');
    for (const name of EXPORTS) assert.match(types, new RegExp(`\\b${name}\\b`), `${entry.types} declares ${name}`);
    assert.ok(existsSync(join(ROOT, 'dist', 'cli', 'main.js')));
    assert.ok(!('tsx' in manifest.dependencies), 'tsx is needed only for development');
    assert.doesNotMatch(readFileSync(join(ROOT, manifest.bin.duo), 'utf8'), /tsx|\.\.\/src\//);
  });

  it("a plain ESM project imports from 'duo-search', encodes a text with the starter model, and searches through openEngine", async () => {
    mkdirSync(join(consumer, 'photos'));
    await writeColourImage(join(consumer, 'photos', 'red.png'), COLOURS.red!, 'png');
    await writeColourImage(join(consumer, 'photos', 'blue.png'), COLOURS.blue!, 'png');
    writeFileSync(
      join(consumer, 'encode.mjs'),
      [
        `import { ${EXPORTS.join(', ')} } from 'duo-search';`,
        `const exported = { ${EXPORTS.join(', ')} };`,
        `const missing = Object.keys(exported).filter((k) => exported[k] === undefined);`,
        `const encoder = await loadEncoder();`,
        `const [v] = await encoder.encodeTexts(['a dog runs along the beach']);`,
        `const norm = Math.hypot(...v);`,
        // the composition root from compiled code: index two images, open the engine the index names, search
        `await buildIndex({ root: ${JSON.stringify(join(consumer, 'photos'))}, indexPath: ${JSON.stringify(join(consumer, 'photos.duo'))}, encoder, modelSpec: defaultModelPath() });`,
        `const engine = await openEngine({ index: ${JSON.stringify(join(consumer, 'photos.duo'))}, reranker: 'none' });`,
        `const [r] = await engine.search([{ text: 'a red picture' }], { k: 2 });`,
        `await engine.close();`,
        `console.log(JSON.stringify({ missing, resolved: import.meta.resolve('duo-search'), model: defaultModelPath(), id: encoder.id, dim: encoder.dim, length: v.length, norm, hits: r.results.map((h) => h.id) }));`,
        `await encoder.dispose();`,
      ].join('\n'),
    );
    const r = await node(['encode.mjs'], consumer);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { missing: string[]; resolved: string; model: string; id: string; dim: number; length: number; norm: number; hits: string[] };
    assert.deepEqual(out.missing, []);
    assert.deepEqual(out.hits.sort(), ['blue.png', 'red.png'], 'openEngine searched the index built from dist');
    assert.match(out.resolved, /\/dist\/index\.js$/);
    assert.equal(realpathSync(out.model), realpathSync(join(ROOT, 'models', 'starter')), 'the default model is found from dist/');
    assert.equal(out.dim, 512, 'the default pack: two models of 256 side by side');
    assert.equal(out.length, 512);
    assert.ok(Math.abs(out.norm - 1) < 1e-5, `unit vector, norm ${out.norm}`);
  });

  it("the exports' types resolve for a TypeScript consumer (moduleResolution NodeNext)", async () => {
    writeFileSync(
      join(consumer, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: true, types: [] }, files: ['typed.ts'] }),
    );
    writeFileSync(
      join(consumer, 'typed.ts'),
      [
        `import { loadEncoder, type Encoder } from 'duo-search';`,
        `const encoder: Encoder = await loadEncoder();`,
        `const dim: number = encoder.dim;`,
        `// @ts-expect-error the types are real, not any`,
        `const wrong: string = encoder.dim;`,
        `export { dim, wrong };`,
      ].join('\n'),
    );
    const r = await node([join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], consumer);
    assert.equal(r.code, 0, r.stdout + r.stderr);
  });

  it('the duo bin runs from dist through the node_modules link and lists its commands', async () => {
    const r = await node([join('node_modules', 'duo-search', manifest.bin.duo), '--help'], consumer);
    assert.equal(r.code, 0, r.stderr);
    const commands = r.stdout.split(/^Commands:$/m)[1] ?? '';
    for (const command of ['index', 'search', 'eval', 'demo', 'train']) assert.match(commands, new RegExp(`^\\s+${command}\\b`, 'm'), `--help lists ${command}`);
  });

  it('the packed tarball holds dist, bin, the starter model and README; no sources, tests or fixtures', async () => {
    const { stdout } = await promisify(execFile)('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, maxBuffer: 16 << 20, shell: process.platform === 'win32' });
    const [pack] = JSON.parse(stdout) as { files: { path: string }[] }[];
    const files = new Set(pack!.files.map((f) => f.path));
    const starter = readdirSync(join(ROOT, 'models', 'starter'), { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => relative(ROOT, join(e.parentPath, e.name)).split(sep).join('/'));
    for (const f of ['package.json', 'README.md', manifest.bin.duo, manifest.exports['.'].import.slice(2), manifest.exports['.'].types.slice(2), 'dist/cli/main.js', ...starter]) {
      assert.ok(files.has(f), `the tarball holds ${f}`);
    }
    const unwanted = [...files].filter((f) => /^(src|test|bench|docs|scripts|runs|models\/(?!starter\/))\//.test(f) || f.startsWith('tsconfig'));
    assert.deepEqual(unwanted, []);
  });

  it('the bin without dist/ says to run npm run build, in one line, and exits 1', async () => {
    const unbuilt = tempDir('duo-unbuilt-');
    mkdirSync(join(unbuilt, 'bin'));
    copyFileSync(join(ROOT, manifest.bin.duo), join(unbuilt, 'bin', 'duo.js'));
    writeFileSync(join(unbuilt, 'package.json'), JSON.stringify({ name: 'duo-search', type: 'module' }));
    const r = await node([join(unbuilt, 'bin', 'duo.js'), '--help'], unbuilt);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /npm run build/);
  });
});
