/**
 * MLflow tracking (src/train/mlflow.ts): the file store checked file by file against MLflow's
 * format (mlflow/store/tracking/file_store.py and utils/validation.py: meta.yaml fields and
 * types, RunStatus numbers, `<ts> <value> <step>` metric lines, params and tags without a
 * trailing newline, experiment ids, 32-hex run ids); the REST path against a local server that
 * answers like MLflow's; and the hook the training commands use, on a tiny training run.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { parse } from 'yaml';
import { main } from '../../src/cli/main.js';
import { Vocabulary } from '../../src/models/starter/vocab.js';
import { seeded } from '../../src/train/dual-encoder.js';
import { exportRunToMlflow, paramsOf, readLinks, resolveTrackingUri, trackTraining } from '../../src/train/mlflow.js';
import { splitBatch } from '../../src/train/mlflow/rest-store.js';
import { pythonFloat, sanitizeKey } from '../../src/train/mlflow/store.js';
import { trainOnSplits, type FeatureSplit, type TrainLoopOptions } from '../../src/train/train-starter.js';
import { packageRoot } from '../../src/util/package-root.js';
import { tempDir } from '../helpers.js';

const STARTED = '2024-05-01T10:00:00.000Z';
const FINISHED = '2024-05-01T10:01:00.000Z';
const EXPERIMENT_META = ['artifact_location', 'creation_time', 'experiment_id', 'last_update_time', 'lifecycle_stage', 'name'];
const RUN_META = ['artifact_uri', 'end_time', 'entry_point_name', 'experiment_id', 'lifecycle_stage', 'run_id', 'run_name', 'run_uuid', 'source_name', 'source_type', 'source_version', 'start_time', 'status', 'tags', 'user_id'];
/** mlflow/utils/validation.py: _VALID_PARAM_AND_METRIC_NAMES and path_not_unique */
const validKey = (k: string) => /^[/\w.\- ]*$/.test(k) && !k.startsWith('/') && !k.endsWith('/') && !k.includes('//') && !k.split('/').some((s) => s === '.' || s === '..');

/** A run folder as `duo train` leaves it: params.json, one metrics line per epoch, summary.json, best weights, a plot. */
function fakeRun(dir: string, o: { epochs?: number; extraHyper?: number; cross?: boolean; finished?: boolean } = {}) {
  const epochs = o.epochs ?? 3;
  mkdirSync(dir, { recursive: true });
  const extra = Object.fromEntries(Array.from({ length: o.extraHyper ?? 0 }, (_, i) => [`hp${i}`, i]));
  const params = { ...(o.cross ? { kind: 'cross-encoder' } : {}), hyper: { head: 'mlp', lr: 0.002, batchSize: 512, featureDropout: 0.2, ...extra }, config: { imageDim: 560, embedDim: 256 }, data: { path: '../shared/datasets/flickr8k', train: 'train' }, backbone: '/models/backbone.onnx', command: 'duo train --run toy --lr 0.002', startedAt: STARTED };
  writeFileSync(join(dir, 'params.json'), JSON.stringify(params));
  const r = (e: number) => ({ 'R@1': 10 + e, 'R@5': 30 + e, 'R@10': 40.5 + e, MRR: 0.25, medianRank: 13 });
  const lines = Array.from({ length: epochs }, (_, i) => ({ epoch: i + 1, step: 70 * (i + 1), loss: 4 - 0.5 * (i + 1), trainAccuracy: 0.1 * (i + 1), lr: 1e-5, temperature: 0.07, dev: { textToImage: r(i + 1), imageToText: r(i), rsum: 150 + i }, seconds: 10 }));
  writeFileSync(join(dir, 'metrics.jsonl'), lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
  if (o.finished !== false) writeFileSync(join(dir, 'summary.json'), JSON.stringify({ bestEpoch: epochs, bestDev: lines.at(-1)!.dev, epochsRun: epochs, trainSeconds: 10 * epochs, finishedAt: FINISHED }));
  writeFileSync(join(dir, 'best.bin'), 'weights');
  writeFileSync(join(dir, 'curves.png'), Buffer.from([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]));
  return lines;
}

const yamlOf = (path: string) => parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
const experimentDirs = (root: string) => readdirSync(root).filter((d) => d !== '.trash' && d !== '0');
const runDirs = (expDir: string) => readdirSync(expDir).filter((d) => statSync(join(expDir, d)).isDirectory());
/** every file under a folder, as paths relative to it */
function files(dir: string, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? files(join(dir, d.name), `${prefix}${d.name}/`) : [`${prefix}${d.name}`]));
}
/** FileStore._get_metric_from_line: `ts value [step]`, int, float, int */
function metricLines(path: string) {
  const text = readFileSync(path, 'utf8');
  assert.ok(text.endsWith('\n'), `${path} ends with a newline`);
  return text.trimEnd().split('\n').map((line) => {
    assert.match(line, /^\d+ (-?\d+(\.\d+)?(e[+-]\d\d+)?|nan|-?inf) -?\d+$/, line);
    const [ts, value, step] = line.split(' ');
    return { ts: Number(ts), value: Number(value), text: value!, step: Number(step) };
  });
}

describe('MLflow file store layout', () => {
  const root = join(tempDir(), 'mlruns');
  const runsDir = tempDir();
  let lines: ReturnType<typeof fakeRun>;
  let expDir: string;
  let runDir: string;

  before(async () => {
    lines = fakeRun(join(runsDir, 'toy'));
    const out = await exportRunToMlflow(join(runsDir, 'toy'), { uri: `file:${root}`, env: {} });
    assert.equal(out.status, 'FINISHED');
    expDir = join(root, experimentDirs(root)[0]!);
    runDir = join(expDir, runDirs(expDir)[0]!);
  });

  it('has the Default experiment 0 and .trash, as MLflow creates a store', () => {
    assert.ok(statSync(join(root, '.trash')).isDirectory());
    const raw = readFileSync(join(root, '0', 'meta.yaml'), 'utf8');
    const meta = parse(raw) as Record<string, unknown>;
    assert.deepEqual(Object.keys(meta), EXPERIMENT_META, 'sorted keys, as PyYAML sort_keys writes them');
    assert.match(raw, /^experiment_id: '0'$/m, 'the id is a string');
    assert.equal(meta.name, 'Default');
    assert.equal(meta.lifecycle_stage, 'active');
    assert.equal(meta.artifact_location, pathToFileURL(join(root, '0')).href);
    assert.ok(Number.isInteger(meta.creation_time) && Math.abs((meta.creation_time as number) - Date.now()) < 60_000);
    assert.equal(meta.last_update_time, meta.creation_time);
  });

  it('creates the experiment with an 18-digit id and its meta.yaml', () => {
    assert.equal(experimentDirs(root).length, 1);
    const id = experimentDirs(root)[0]!;
    assert.match(id, /^[1-9]\d{17}$/);
    const meta = yamlOf(join(expDir, 'meta.yaml'));
    assert.deepEqual(Object.keys(meta), EXPERIMENT_META);
    assert.equal(meta.experiment_id, id);
    assert.equal(meta.name, 'duo-train');
    assert.equal(meta.artifact_location, pathToFileURL(expDir).href);
  });

  it("writes the run's meta.yaml with MLflow's fields, types and status number", () => {
    const id = runDirs(expDir)[0]!;
    assert.match(id, /^[0-9a-f]{32}$/, 'uuid4().hex');
    const meta = yamlOf(join(runDir, 'meta.yaml'));
    assert.deepEqual(Object.keys(meta), RUN_META);
    assert.equal(meta.run_id, id);
    assert.equal(meta.run_uuid, id);
    assert.equal(meta.run_name, 'toy');
    assert.equal(meta.experiment_id, experimentDirs(root)[0]);
    assert.equal(meta.artifact_uri, `${pathToFileURL(expDir).href}/${id}/artifacts`);
    assert.equal(meta.status, 3, 'FINISHED');
    assert.equal(meta.start_time, Date.parse(STARTED));
    assert.equal(meta.end_time, Date.parse(FINISHED));
    assert.equal(meta.lifecycle_stage, 'active');
    assert.equal(meta.source_type, 4, 'SourceType.LOCAL');
    for (const k of ['entry_point_name', 'source_name', 'source_version']) assert.equal(meta[k], '');
    assert.deepEqual(meta.tags, []);
    assert.equal(meta.user_id, userInfo().username);
  });

  it('writes params as text without a trailing newline: hyper-parameters bare, the rest by path', () => {
    const p = (k: string) => readFileSync(join(runDir, 'params', k), 'utf8');
    assert.equal(p('lr'), '0.002');
    assert.equal(p('head'), 'mlp');
    assert.equal(p('featureDropout'), '0.2');
    assert.equal(p('config.embedDim'), '256');
    assert.equal(p('data.path'), '../shared/datasets/flickr8k');
    assert.equal(p('backbone'), '/models/backbone.onnx');
    const names = files(join(runDir, 'params'));
    assert.ok(!names.includes('command') && !names.includes('startedAt'), names.join(', '));
    for (const n of names) assert.ok(validKey(n), n);
  });

  it('writes one `<timestamp ms> <value> <step>` line per epoch, step = epoch, nested keys as folders', () => {
    const loss = metricLines(join(runDir, 'metrics', 'loss'));
    assert.deepEqual(loss.map((l) => l.step), [1, 2, 3]);
    assert.deepEqual(loss.map((l) => l.value), lines.map((l) => l.loss));
    assert.deepEqual(loss.map((l) => l.text), ['3.5', '3.0', '2.5'], "Python's str(float)");
    assert.deepEqual(loss.map((l) => l.ts), [1, 2, 3].map((e) => Date.parse(STARTED) + 10_000 * e), 'start + the epochs’ seconds');
    assert.deepEqual(metricLines(join(runDir, 'metrics', 'lr')).map((l) => l.text), ['1e-05', '1e-05', '1e-05']);
    const r10 = metricLines(join(runDir, 'metrics', 'dev', 'textToImage', 'R_10'));
    assert.deepEqual(r10.map((l) => l.value), [41.5, 42.5, 43.5]);
    assert.deepEqual(metricLines(join(runDir, 'metrics', 'optimizer_steps')).map((l) => l.value), [70, 140, 210]);
    const best = metricLines(join(runDir, 'metrics', 'summary', 'bestEpoch'));
    assert.deepEqual(best.map((l) => [l.value, l.step, l.ts]), [[3, 3, Date.parse(FINISHED)]]);
    const names = files(join(runDir, 'metrics'));
    assert.ok(!names.includes('epoch'), 'the epoch is the step, not a metric');
    assert.ok(names.includes('dev/imageToText/medianRank') && names.includes('summary/bestDev/rsum'), names.join(', '));
    for (const n of names) assert.ok(validKey(n), n);
  });

  it('writes the mlflow.* tags and the path of the best weights, without a trailing newline', () => {
    const t = (k: string) => readFileSync(join(runDir, 'tags', k), 'utf8');
    assert.equal(t('mlflow.runName'), 'toy');
    assert.equal(t('mlflow.user'), userInfo().username);
    assert.equal(t('mlflow.source.name'), 'duo train');
    assert.equal(t('mlflow.source.type'), 'LOCAL');
    assert.equal(t('duo.command'), 'duo train --run toy --lr 0.002');
    assert.equal(t('duo.best_weights'), join(runsDir, 'toy', 'best.bin'));
    if (existsSync(join(packageRoot(), '.git'))) {
      assert.equal(t('mlflow.source.git.commit'), execFileSync('git', ['rev-parse', 'HEAD'], { cwd: packageRoot(), encoding: 'utf8' }).trim());
    }
    for (const n of files(join(runDir, 'tags'))) assert.ok(validKey(n) && !t(n).endsWith('\n'), n);
  });

  it('copies the small record files and the plot into artifacts/, not the weights', () => {
    assert.deepEqual(files(join(runDir, 'artifacts')).sort(), ['curves.png', 'metrics.jsonl', 'params.json', 'summary.json']);
    assert.deepEqual(readFileSync(join(runDir, 'artifacts', 'curves.png')), readFileSync(join(runsDir, 'toy', 'curves.png')));
  });

  it('links the run folder to the MLflow run; a second export is skipped unless forced', async () => {
    const link = readLinks(join(runsDir, 'toy'))[pathToFileURL(root).href]!;
    assert.equal(link.runId, runDirs(expDir)[0]);
    assert.equal(link.complete, true);
    const again = await exportRunToMlflow(join(runsDir, 'toy'), { uri: root, env: {} });
    assert.equal(again.skipped, true);
    assert.equal(runDirs(expDir).length, 1);
    await exportRunToMlflow(join(runsDir, 'toy'), { uri: root, env: {}, force: true });
    assert.equal(runDirs(expDir).length, 2);
  });

  it('puts cross-encoder runs in their own experiment, reuses an experiment by name, and marks unfinished runs KILLED', async () => {
    fakeRun(join(runsDir, 'xa'), { cross: true });
    fakeRun(join(runsDir, 'stopped'), { finished: false });
    await exportRunToMlflow(join(runsDir, 'xa'), { uri: root, env: {} });
    const stopped = await exportRunToMlflow(join(runsDir, 'stopped'), { uri: root, env: {} });
    const names = experimentDirs(root).map((d) => yamlOf(join(root, d, 'meta.yaml')).name).sort();
    assert.deepEqual(names, ['duo-train', 'duo-train-cross']);
    const meta = yamlOf(join(root, stopped.link.experimentId, stopped.link.runId, 'meta.yaml'));
    assert.equal(meta.status, 5, 'KILLED');
    assert.equal(meta.end_time, Date.parse(STARTED) + 30_000, 'the last epoch');
  });
});

describe('MLflow formats', () => {
  it("writes values as Python's str(float)", () => {
    const cases: [number, string][] = [[12, '12.0'], [0.5, '0.5'], [-3, '-3.0'], [1e-5, '1e-05'], [2.5e-7, '2.5e-07'], [0.0001, '0.0001'], [1e15, '1000000000000000.0'], [1e16, '1e+16'], [0.1 + 0.2, '0.30000000000000004'], [NaN, 'nan'], [-Infinity, '-inf'], [0, '0.0']];
    for (const [v, s] of cases) assert.equal(pythonFloat(v), s, String(v));
  });

  it('sanitises keys to what MLflow accepts', () => {
    assert.equal(sanitizeKey('dev/textToImage/R@10'), 'dev/textToImage/R_10');
    assert.equal(sanitizeKey('/a//b/'), 'a/b');
    assert.equal(sanitizeKey('../x'), '_/x');
    assert.equal(sanitizeKey('a b.c-d_e'), 'a b.c-d_e');
    assert.equal(sanitizeKey('k'.repeat(300)).length, 250);
  });

  it('splits a batch to the log-batch limits', () => {
    const kv = (n: number) => Array.from({ length: n }, (_, i) => ({ key: `k${i}`, value: 'v' }));
    const metrics = Array.from({ length: 2500 }, (_, i) => ({ key: 'm', value: i, timestamp: 1, step: i }));
    const parts = splitBatch({ metrics, params: kv(250), tags: kv(30) });
    for (const p of parts) {
      assert.ok(p.params.length <= 100 && p.tags.length <= 100 && p.metrics.length <= 1000 && p.params.length + p.tags.length + p.metrics.length <= 1000);
    }
    assert.equal(parts.flatMap((p) => p.metrics).length, 2500);
    assert.deepEqual(parts.flatMap((p) => p.params).map((p) => p.key), kv(250).map((p) => p.key));
    assert.equal(parts.flatMap((p) => p.tags).length, 30);
  });

  it('resolves the tracking URI from the flag and MLFLOW_TRACKING_URI', () => {
    assert.equal(resolveTrackingUri(undefined, 'runs', {}), undefined, 'off by default');
    assert.equal(resolveTrackingUri(undefined, 'runs', { MLFLOW_TRACKING_URI: 'http://h:5000' }), 'http://h:5000');
    assert.equal(resolveTrackingUri(true, '/data/x/runs', {}), '/data/x/mlruns', 'beside the runs folder');
    assert.equal(resolveTrackingUri(true, 'runs', { MLFLOW_TRACKING_URI: 'file:/m' }), 'file:/m');
    assert.equal(resolveTrackingUri('file:./m', 'runs', { MLFLOW_TRACKING_URI: 'http://h' }), 'file:./m');
    assert.equal(resolveTrackingUri(false, 'runs', { MLFLOW_TRACKING_URI: 'http://h' }), undefined);
  });
});

interface Recorded {
  method: string;
  path: string;
  body: Record<string, unknown> | null;
  raw: Buffer;
  auth?: string;
}

/** A tracking server that answers like MLflow's: 404 RESOURCE_DOES_NOT_EXIST for an unknown experiment, JSON bodies, an artifact proxy. */
async function fakeServer(o: { failMetrics?: boolean } = {}) {
  const requests: Recorded[] = [];
  const experiments = new Map<string, string>();
  let runs = 0;
  const read = (req: IncomingMessage) => new Promise<Buffer>((ok) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c)).on('end', () => ok(Buffer.concat(chunks)));
  });
  const server = createServer(async (req, res) => {
    const raw = await read(req);
    const url = new URL(req.url!, 'http://x');
    const body = req.headers['content-type'] === 'application/json' && raw.length ? (JSON.parse(raw.toString()) as Record<string, unknown>) : null;
    requests.push({ method: req.method!, path: url.pathname, body, raw, auth: req.headers.authorization });
    const send = (status: number, json: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(json));
    const endpoint = url.pathname.replace('/api/2.0/mlflow/', '');
    if (url.pathname.startsWith('/api/2.0/mlflow-artifacts/artifacts/')) return send(200, {});
    if (endpoint === 'experiments/get-by-name') {
      const id = experiments.get(url.searchParams.get('experiment_name')!);
      return id ? send(200, { experiment: { experiment_id: id, name: url.searchParams.get('experiment_name'), lifecycle_stage: 'active' } }) : send(404, { error_code: 'RESOURCE_DOES_NOT_EXIST', message: 'Could not find experiment' });
    }
    if (endpoint === 'experiments/create') {
      experiments.set(String(body!.name), String(experiments.size + 7));
      return send(200, { experiment_id: experiments.get(String(body!.name)) });
    }
    if (endpoint === 'runs/create') {
      const id = (++runs).toString(16).padStart(32, '0');
      return send(200, { run: { info: { run_id: id, run_uuid: id, experiment_id: body!.experiment_id, artifact_uri: `mlflow-artifacts:/${body!.experiment_id}/${id}/artifacts`, status: 'RUNNING' }, data: {} } });
    }
    if (endpoint === 'runs/log-batch') return o.failMetrics && (body!.metrics as unknown[]).length > 0 ? send(500, { error_code: 'INTERNAL_ERROR', message: 'database is locked' }) : send(200, {});
    if (endpoint === 'runs/update') return send(200, { run_info: { run_id: body!.run_id, status: body!.status } });
    send(404, { error_code: 'ENDPOINT_NOT_FOUND', message: url.pathname });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const uri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  return { uri, requests, close: () => new Promise<void>((ok) => server.close(() => ok())) };
}

/** Images of 4 concepts; captions name the concept (a tiny version of train-loop.test.ts's task). */
function synthetic(images: number, seed: number, vocab: Vocabulary): FeatureSplit {
  const rand = seeded(seed);
  const dim = 8;
  const x = new Float32Array(images * dim);
  const flatCaptions: Int32Array[] = [];
  const captionImage: number[] = [];
  for (let i = 0; i < images; i++) {
    for (let j = 0; j < dim; j++) x[i * dim + j] = Math.sin((i % 4) * 7.1 + j * 1.3) * 2 + (rand() - 0.5);
    for (let k = 0; k < 5; k++) {
      flatCaptions.push(vocab.encode(`a photo of thing${i % 4}`));
      captionImage.push(i);
    }
  }
  return { images, dim, x, captions: [], flatCaptions, captionImage };
}
const vocab = Vocabulary.build(['a photo of', 'a photo of', ...Array.from({ length: 4 }, (_, c) => `thing${c} thing${c}`)]);
const train = synthetic(48, 1, vocab);
const dev = synthetic(16, 2, vocab);
const tiny = (runDir: string, extra: Partial<TrainLoopOptions> = {}): TrainLoopOptions => ({
  runDir, head: 'linear', hidden: 8, wordDim: 8, embedDim: 4, batchSize: 16, epochs: 3, lr: 1e-2, weightDecay: 1e-4, patience: 10, seed: 3, minCount: 1, featureDropout: 0, wordDropout: 0, command: 'duo train --run tiny', dataInfo: { synthetic: true }, backbone: 'none', ...extra,
});

describe('MLflow REST API', () => {
  let server: Awaited<ReturnType<typeof fakeServer>>;
  before(async () => {
    server = await fakeServer();
  });
  after(() => server.close());

  it('creates the experiment and run, logs in batches within the limits, uploads artifacts, ends the run', async () => {
    const runsDir = tempDir();
    const lines = fakeRun(join(runsDir, 'big'), { epochs: 400, extraHyper: 150 });
    const out = await exportRunToMlflow(join(runsDir, 'big'), { uri: server.uri, env: { MLFLOW_TRACKING_TOKEN: 'secret' } });
    const calls = server.requests.map((r) => `${r.method} ${r.path.replace(/^\/api\/2\.0\//, '')}`);
    assert.deepEqual(calls.slice(0, 3), ['GET mlflow/experiments/get-by-name', 'POST mlflow/experiments/create', 'POST mlflow/runs/create']);
    assert.equal(calls.at(-1), 'POST mlflow/runs/update');
    assert.ok(server.requests.every((r) => r.auth === 'Bearer secret'));
    const create = server.requests[2]!.body!;
    assert.equal(create.experiment_id, '7');
    assert.equal(create.run_name, 'big');
    assert.equal(create.start_time, Date.parse(STARTED));
    assert.ok((create.tags as { key: string }[]).some((t) => t.key === 'mlflow.source.name'));
    const batches = server.requests.filter((r) => r.path.endsWith('runs/log-batch')).map((r) => r.body as { run_id: string; metrics: { key: string; value: number; timestamp: number; step: number }[]; params: unknown[]; tags: unknown[] });
    for (const b of batches) {
      assert.equal(b.run_id, out.link.runId);
      assert.ok(b.metrics.length <= 1000 && b.params.length <= 100 && b.tags.length <= 100 && b.metrics.length + b.params.length + b.tags.length <= 1000, `${b.metrics.length}/${b.params.length}/${b.tags.length}`);
    }
    const metrics = batches.flatMap((b) => b.metrics);
    const loss = metrics.filter((m) => m.key === 'loss');
    assert.deepEqual(loss.map((m) => m.step), lines.map((l) => l.epoch));
    assert.deepEqual(loss.map((m) => m.value), lines.map((l) => l.loss));
    assert.ok(metrics.every((m) => Number.isInteger(m.timestamp) && Number.isInteger(m.step)));
    assert.equal(batches.flatMap((b) => b.params).length, paramsOf(JSON.parse(readFileSync(join(runsDir, 'big', 'params.json'), 'utf8'))).length);
    assert.ok(batches.flatMap((b) => b.params).length > 150, 'more params than one call takes');
    const puts = server.requests.filter((r) => r.method === 'PUT').map((r) => r.path);
    assert.ok(puts.includes(`/api/2.0/mlflow-artifacts/artifacts/7/${out.link.runId}/artifacts/curves.png`), puts.join(', '));
    assert.deepEqual(server.requests.at(-1)!.body, { run_id: out.link.runId, status: 'FINISHED', end_time: Date.parse(FINISHED) });
    // a second run finds the experiment by name
    server.requests.length = 0;
    await exportRunToMlflow(join(runsDir, 'big'), { uri: server.uri, env: {}, force: true });
    assert.ok(!server.requests.some((r) => r.path.endsWith('experiments/create')));
  });

  it('a server error during training is one warning: the training and its run folder are whole', async () => {
    const failing = await fakeServer({ failMetrics: true });
    try {
      const runDir = join(tempDir(), 'tiny');
      const warnings: string[] = [];
      const { best } = await trackTraining({ uri: failing.uri, runDir, fresh: true, env: {}, onWarn: (m) => warnings.push(m), signals: new EventEmitter() }, (tracker) => trainOnSplits(tiny(runDir, { tracker }), train, dev, vocab));
      assert.ok(best, 'the training finished');
      assert.equal(warnings.length, 1, warnings.join('\n'));
      assert.match(warnings[0]!, /HTTP 500 INTERNAL_ERROR: database is locked/);
      assert.match(warnings[0]!, /duo runs export-mlflow .*tiny --to http/);
      assert.ok(existsSync(join(runDir, 'summary.json')));
      assert.equal(readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').length, 3);
      // params went in with the run; the first epoch's metrics failed, and nothing was sent after it
      assert.deepEqual(failing.requests.map((r) => r.path.replace('/api/2.0/mlflow/', '')), ['experiments/get-by-name', 'experiments/create', 'runs/create', 'runs/log-batch', 'runs/log-batch']);
      assert.equal(Object.values(readLinks(runDir))[0]!.complete, false);
    } finally {
      await failing.close();
    }
  });
});

describe('MLflow hook of the training commands', () => {
  const status = (root: string, runDir: string) => {
    const link = readLinks(runDir)[pathToFileURL(root).href]!;
    return { link, meta: yamlOf(join(root, link.experimentId, link.runId, 'meta.yaml')), dir: join(root, link.experimentId, link.runId) };
  };

  it('logs a tiny training run live: RUNNING, every epoch at step = epoch, FINISHED', async () => {
    const root = join(tempDir(), 'mlruns');
    const runDir = join(tempDir(), 'tiny');
    const t0 = Date.now();
    const seen: unknown[] = [];
    await trackTraining({ uri: root, runDir, fresh: true, env: {}, signals: new EventEmitter() }, (tracker) =>
      trainOnSplits(tiny(runDir, { tracker, onLog: () => seen.push(status(root, runDir).meta.status) }), train, dev, vocab),
    );
    assert.deepEqual(seen, [1, 1, 1], 'RUNNING during training');
    const { meta, dir } = status(root, runDir);
    assert.equal(meta.status, 3);
    assert.ok((meta.start_time as number) >= t0 && (meta.end_time as number) >= (meta.start_time as number));
    const loss = metricLines(join(dir, 'metrics', 'loss'));
    assert.deepEqual(loss.map((l) => l.step), [1, 2, 3]);
    assert.ok(loss.every((l) => l.ts >= t0 && l.ts <= Date.now()));
    assert.equal(readFileSync(join(dir, 'params', 'head'), 'utf8'), 'linear');
  });

  it('marks a run that throws FAILED and one stopped by SIGINT KILLED; --resume continues the same MLflow run', async () => {
    const root = join(tempDir(), 'mlruns');
    const runsDir = tempDir();
    const failed = join(runsDir, 'failed');
    let epochs = 0;
    const boom = () => {
      if (++epochs === 2) throw new Error('boom');
    };
    await assert.rejects(trackTraining({ uri: root, runDir: failed, fresh: true, env: {}, signals: new EventEmitter() }, (tracker) => trainOnSplits(tiny(failed, { tracker, onLog: boom }), train, dev, vocab)), /boom/);
    const first = status(root, failed);
    assert.equal(first.meta.status, 4, 'FAILED');
    assert.equal(metricLines(join(first.dir, 'metrics', 'loss')).length, 2);

    await trackTraining({ uri: root, runDir: failed, fresh: false, env: {}, signals: new EventEmitter() }, (tracker) => trainOnSplits(tiny(failed, { tracker, resume: true }), train, dev, vocab));
    const resumed = status(root, failed);
    assert.equal(resumed.link.runId, first.link.runId, 'the same MLflow run');
    assert.equal(resumed.meta.status, 3);
    assert.deepEqual(metricLines(join(resumed.dir, 'metrics', 'loss')).map((l) => l.step), [1, 2, 3]);

    const killed = join(runsDir, 'killed');
    const signals = new EventEmitter();
    const exits: number[] = [];
    // one Ctrl-C, after the first epoch (a second one a second or more later would quit again, by design)
    let interrupted = false;
    const interruptOnce = () => {
      if (!interrupted) signals.emit('SIGINT');
      interrupted = true;
    };
    await trackTraining({ uri: root, runDir: killed, fresh: true, env: {}, signals, exit: (c) => exits.push(c), onWarn: () => {} }, (tracker) =>
      trainOnSplits(tiny(killed, { tracker, onLog: interruptOnce }), train, dev, vocab),
    );
    assert.deepEqual(exits, [130]);
    assert.equal(status(root, killed).meta.status, 5, 'KILLED, not overwritten by the end of the training');
  });

  it('duo runs export-mlflow writes finished runs into a store; a bad URI is a usage error', async () => {
    const runsDir = tempDir();
    const root = join(tempDir(), 'mlruns');
    fakeRun(join(runsDir, 'old'));
    const log = console.log;
    console.log = () => {};
    try {
      assert.equal(await main(['runs', 'export-mlflow', 'old', '--runs', runsDir, '--to', `file:${root}`]), 0);
      assert.equal(await main(['runs', 'export-mlflow', 'old', '--runs', runsDir, '--to', 'databricks']), 2);
    } finally {
      console.log = log;
    }
    assert.equal(status(root, join(runsDir, 'old')).meta.status, 3);
  });
});
