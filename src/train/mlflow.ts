/**
 * MLflow tracking for training runs: each run folder under `runs/` (runs.ts, the project's own
 * format, which stays the record) is mirrored into an MLflow tracking store — MLflow's file
 * store (`mlruns/`, what `mlflow ui --backend-store-uri file:./mlruns` reads) or a tracking
 * server's REST API — as the run goes (RUNNING at the start, metrics after every epoch with
 * step = epoch, FINISHED / FAILED / KILLED at the end), or afterwards (`duo runs export-mlflow`).
 *
 * The mirror maps a run folder to MLflow as follows: params.json's `hyper` keys are params as
 * they are (`lr`, `head`), its other fields params under their path (`config.embedDim`,
 * `data.path`); every number of an epoch line of metrics.jsonl is a metric under its path
 * (`loss`, `dev/textToImage/R_10`; `step` becomes `optimizer_steps`) at step = epoch; every
 * number of summary.json a metric under `summary/`; params.json, metrics.jsonl, summary.json,
 * head/head.json and any PNG of the folder are artifacts; the best weights are named by a tag
 * (`duo.best_weights`), not copied. The link (store, experiment, run id) is kept in the run
 * folder's mlflow.json, so `--resume` continues the same MLflow run.
 *
 * A store that fails during training (a server down) never fails the training: the first error
 * is reported once as a warning, logging to MLflow stops, and the run folder is complete as
 * always; `duo runs export-mlflow` sends it later.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { userInfo } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createError } from '../errors.js';
import { packageRoot } from '../util/package-root.js';
import { FileStore } from './mlflow/file-store.js';
import { RestStore } from './mlflow/rest-store.js';
import { LIMITS, sanitizeKey, type KeyValue, type Metric, type MlflowStore, type RunStatus, type StoredRun } from './mlflow/store.js';
import { readRun, writeJson } from './runs.js';

/** What a training loop tells a tracker: the run folder holds params.json (started), an epoch line was appended. */
export interface TrainingTracker {
  started(): Promise<void>;
  epoch(line: { epoch: number }): Promise<void>;
}

export type TrainingKind = 'train' | 'train-cross' | 'train-head';

/** The tracking URI, or undefined for none: `--mlflow <uri>`; `--mlflow` alone: MLFLOW_TRACKING_URI, else mlruns/ beside the runs folder; `--no-mlflow`: none; no flag: MLFLOW_TRACKING_URI if set. */
export function resolveTrackingUri(flag: string | boolean | undefined, runsDir: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (flag === false) return undefined;
  if (typeof flag === 'string' && flag !== '') return flag;
  const fromEnv = env.MLFLOW_TRACKING_URI?.trim() || undefined;
  return flag === true ? (fromEnv ?? join(dirname(resolve(runsDir)), 'mlruns')) : fromEnv;
}

/** A store for a tracking URI: http(s):// a server; file:… or a plain path a file store. */
export function openMlflowStore(uri: string, env: NodeJS.ProcessEnv = process.env): MlflowStore {
  if (/^https?:\/\//i.test(uri)) return new RestStore(uri, env);
  // file:///abs and file://localhost/abs are URLs; MLflow also takes file:./relative and file:/abs
  if (/^file:/i.test(uri)) return new FileStore(uri.startsWith('file://') ? fileURLToPath(uri) : decodeURIComponent(uri.slice('file:'.length)));
  if (uri === 'databricks' || /^[a-z][a-z0-9+.-]+:/i.test(uri)) {
    throw createError('BAD_ARGUMENT', '--mlflow / --to / MLFLOW_TRACKING_URI', `"${uri}" is not supported: use a tracking server (http://host:5000) or a file store (file:./mlruns, or a folder)`);
  }
  return new FileStore(uri);
}

export function kindOf(params: Record<string, unknown>): TrainingKind {
  if (params.kind === 'cross-encoder') return 'train-cross';
  return (params.data as Record<string, unknown> | undefined)?.encoder !== undefined ? 'train-head' : 'train';
}

/** MLFLOW_EXPERIMENT_NAME when set (as MLflow's clients read it), else one experiment per kind of run: duo-train, duo-train-cross, duo-train-head. */
export const experimentName = (kind: TrainingKind, env: NodeJS.ProcessEnv = process.env) => env.MLFLOW_EXPERIMENT_NAME?.trim() || `duo-${kind}`;

const text = (v: unknown, limit: number) => (v === null || v === undefined ? '' : typeof v === 'string' ? v : typeof v === 'object' ? JSON.stringify(v) : String(v)).slice(0, limit);
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** params.json as MLflow params: `hyper` keys bare, everything else under its dotted path; command, start time and kind are tags or run fields instead. */
export function paramsOf(params: Record<string, unknown>): KeyValue[] {
  const out = new Map<string, string>();
  const walk = (v: unknown, path: string[]) => {
    if (isRecord(v) && Object.keys(v).length > 0) for (const [k, x] of Object.entries(v)) walk(x, [...path, k]);
    else if (!out.has(sanitizeKey(path.join('.')))) out.set(sanitizeKey(path.join('.')), text(v, LIMITS.paramValue));
  };
  if (isRecord(params.hyper)) for (const [k, v] of Object.entries(params.hyper)) walk(v, [k]);
  for (const [k, v] of Object.entries(params)) if (!['hyper', 'command', 'startedAt', 'kind'].includes(k)) walk(v, [k]);
  return [...out].map(([key, value]) => ({ key, value }));
}

/** Every finite or infinite number in an object, as metrics keyed by their '/'-joined path. */
export function metricsOf(value: Record<string, unknown>, step: number, timestamp: number, prefix: string[] = []): Metric[] {
  const out: Metric[] = [];
  const walk = (v: unknown, path: string[]) => {
    if (typeof v === 'number') out.push({ key: sanitizeKey(path.join('/')), value: v, timestamp, step });
    else if (isRecord(v)) for (const [k, x] of Object.entries(v)) walk(x, [...path, k]);
  };
  walk(value, prefix);
  return out;
}

/** An epoch line's metrics: its epoch is the step; the optimizer's step count is a metric of its own. */
function epochMetrics(line: Record<string, unknown>, timestamp: number): Metric[] {
  const { epoch, step, ...rest } = line;
  return metricsOf(step === undefined ? rest : { ...rest, optimizer_steps: step }, Number(epoch), timestamp);
}

/** Where a run folder was mirrored, per store, in the run folder's mlflow.json. */
export interface MlflowLink extends StoredRun {
  uri: string;
  experiment: string;
  /** the run reached its end in the store (any status); false: logging stopped on an error */
  complete: boolean;
}
const LINKS = 'mlflow.json';
export function readLinks(runDir: string): Record<string, MlflowLink> {
  const path = join(runDir, LINKS);
  return existsSync(path) ? ((JSON.parse(readFileSync(path, 'utf8')) as { runs: Record<string, MlflowLink> }).runs ?? {}) : {};
}
async function saveLink(runDir: string, link: MlflowLink): Promise<void> {
  await writeJson(join(runDir, LINKS), { runs: { ...readLinks(runDir), [link.uri]: link } });
}

/** The git commit of this checkout of duo-search (none for an installed package); asked once per run. */
function sourceCommit(): string | undefined {
  try {
    if (!existsSync(join(packageRoot(), '.git'))) return undefined;
    return execFileSync('git', ['rev-parse', 'HEAD'], { cwd: packageRoot(), encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }).trim() || undefined;
  } catch {
    return undefined;
  }
}

function userName(env: NodeJS.ProcessEnv): string {
  try {
    return userInfo().username;
  } catch {
    return env.USER ?? env.LOGNAME ?? 'unknown';
  }
}

const readJsonLines = (path: string) => (existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) : []);

/** One run folder mirrored into one store. */
class RunMirror {
  private constructor(
    readonly store: MlflowStore,
    readonly runDir: string,
    readonly link: MlflowLink,
  ) {}

  static async create(store: MlflowStore, runDir: string, o: { experiment?: string; startTime: number; env: NodeJS.ProcessEnv }): Promise<RunMirror> {
    const params = readRun(runDir).params;
    const kind = kindOf(params);
    const experiment = o.experiment ?? experimentName(kind, o.env);
    const runName = basename(resolve(runDir));
    const command = typeof params.command === 'string' ? params.command : '';
    const tags: Record<string, string | undefined> = {
      'mlflow.runName': runName,
      'mlflow.user': userName(o.env),
      'mlflow.source.name': `duo ${kind}`,
      'mlflow.source.type': 'LOCAL',
      'mlflow.source.git.commit': sourceCommit(),
      'mlflow.note.content': `duo-search run folder ${resolve(runDir)}${command ? `\n\n${command}` : ''}`,
      'duo.kind': kind,
      'duo.command': command,
      'duo.run_dir': resolve(runDir),
    };
    const tagList = Object.entries(tags).filter((e): e is [string, string] => e[1] !== undefined).map(([key, value]) => ({ key, value: text(value, LIMITS.tagValue) }));
    const experimentId = await store.experimentId(experiment);
    const run = await store.createRun(experimentId, { runName, userId: tags['mlflow.user']!, startTime: Math.round(o.startTime), tags: tagList });
    const mirror = new RunMirror(store, runDir, { uri: store.uri, experiment, ...run, complete: false });
    await saveLink(runDir, mirror.link);
    await store.logBatch(run, { params: paramsOf(params) });
    return mirror;
  }

  /** The run a resumed training continues: RUNNING again. */
  static async reopen(store: MlflowStore, runDir: string, link: MlflowLink): Promise<RunMirror> {
    await store.updateRun(link, 'RUNNING', null);
    const mirror = new RunMirror(store, runDir, { ...link, complete: false });
    await saveLink(runDir, mirror.link);
    return mirror;
  }

  async logEpochs(lines: Record<string, unknown>[], timestamps: number[]): Promise<void> {
    await this.store.logBatch(this.link, { metrics: lines.flatMap((l, i) => epochMetrics(l, timestamps[i]!)) });
  }

  /** Summary metrics, artifacts and the final status. */
  async finish(status: RunStatus, endTime: number): Promise<void> {
    const summaryPath = join(this.runDir, 'summary.json');
    const lines = readJsonLines(join(this.runDir, 'metrics.jsonl'));
    if (existsSync(summaryPath)) {
      const summary = JSON.parse(readFileSync(summaryPath, 'utf8')) as Record<string, unknown>;
      const step = typeof summary.epochsRun === 'number' ? summary.epochsRun : Number(lines.at(-1)?.epoch ?? 0);
      await this.store.logBatch(this.link, { metrics: metricsOf(summary, step, endTime, ['summary']) });
    }
    const tags: KeyValue[] = [];
    if (existsSync(join(this.runDir, 'best.bin'))) tags.push({ key: 'duo.best_weights', value: resolve(this.runDir, 'best.bin') });
    if (existsSync(join(this.runDir, 'head'))) tags.push({ key: 'duo.head_dir', value: resolve(this.runDir, 'head') });
    if (tags.length > 0) await this.store.logBatch(this.link, { tags });
    const pngs = readdirSync(this.runDir).filter((f) => f.endsWith('.png'));
    for (const name of ['params.json', 'metrics.jsonl', 'summary.json', 'head/head.json', ...pngs]) {
      if (existsSync(join(this.runDir, name)) && !(await this.store.logArtifact(this.link, join(this.runDir, name), name))) break;
    }
    await this.store.updateRun(this.link, status, Math.round(endTime));
    this.link.complete = true;
    await saveLink(this.runDir, this.link);
  }
}

/** A tracker for a training in progress: never throws; the first store error is one warning and ends the logging. */
class LiveTracker implements TrainingTracker {
  private mirror: RunMirror | undefined;
  private queue: Promise<void> = Promise.resolve();
  private stopped = false;
  private ended = false;

  constructor(
    private readonly store: MlflowStore,
    private readonly o: TrackOptions & { env: NodeJS.ProcessEnv },
  ) {}

  private run(what: string, op: () => Promise<void>): Promise<void> {
    this.queue = this.queue.then(async () => {
      if (this.stopped) return;
      try {
        await op();
      } catch (error) {
        this.stopped = true;
        const runDir = this.o.runDir;
        this.o.onWarn?.(
          `MLflow logging stopped (${what}): ${(error as Error).message}. The run itself goes on and is kept in ${runDir}; ` +
            `to send it to MLflow later: duo runs export-mlflow ${runDir} --to ${this.store.uri}`,
        );
      }
    });
    return this.queue;
  }

  started(): Promise<void> {
    return this.run('starting the run', async () => {
      const link = readLinks(this.o.runDir)[this.store.uri];
      if (link && !this.o.fresh) this.mirror = await RunMirror.reopen(this.store, this.o.runDir, link);
      else {
        this.mirror = await RunMirror.create(this.store, this.o.runDir, { startTime: Date.now(), env: this.o.env, experiment: this.o.experiment });
        // a resumed run that was not tracked before: its earlier epochs too
        const earlier = readJsonLines(join(this.o.runDir, 'metrics.jsonl'));
        if (earlier.length > 0) await this.mirror.logEpochs(earlier, earlier.map(() => Date.now()));
      }
      const l = this.mirror.link;
      this.o.onInfo?.(`MLflow: run ${l.runId} in experiment "${l.experiment}" (${l.experimentId}) at ${l.uri}`);
    });
  }

  epoch(line: { epoch: number }): Promise<void> {
    // after a SIGINT the run is KILLED in the store; the epochs the process still finishes are only in the run folder
    if (this.ended) return this.queue;
    return this.run(`epoch ${line.epoch}`, async () => this.mirror?.logEpochs([line], [Date.now()]));
  }

  end(status: RunStatus): Promise<void> {
    if (this.ended) return this.queue;
    this.ended = true;
    return this.run(`marking the run ${status}`, async () => this.mirror?.finish(status, Date.now()));
  }
}

export interface TrackOptions {
  /** tracking URI; undefined: no tracking */
  uri: string | undefined;
  runDir: string;
  /** experiment name (default: MLFLOW_EXPERIMENT_NAME, else duo-<kind>) */
  experiment?: string;
  /** a new MLflow run even if the folder was tracked there before (a training that is not --resume) */
  fresh?: boolean;
  env?: NodeJS.ProcessEnv;
  onWarn?: (message: string) => void;
  onInfo?: (message: string) => void;
  /** where SIGINT and SIGTERM come from (tests pass their own emitter) */
  signals?: Pick<NodeJS.EventEmitter, 'on' | 'off'>;
  exit?: (code: number) => void;
}

/**
 * Runs a training with an MLflow tracker (none when no URI): the run is FINISHED when `train`
 * returns, FAILED when it throws, KILLED on SIGINT or SIGTERM (then the process exits 130 or 143
 * once the status is written).
 */
export async function trackTraining<T>(o: TrackOptions, train: (tracker: TrainingTracker | undefined) => Promise<T>): Promise<T> {
  if (!o.uri) return train(undefined);
  const env = o.env ?? process.env;
  const tracker = new LiveTracker(openMlflowStore(o.uri, env), { ...o, env });
  const signals = o.signals ?? process;
  const exit = o.exit ?? ((code: number) => process.exit(code));
  // A terminal's Ctrl-C reaches every process of its group, and a wrapper (tsx, npm) passes it on
  // as well: the same interrupt can arrive twice at once. Repeats within a second are that echo;
  // a later one (a second Ctrl-C) exits at once, without waiting for the store.
  let first: number | undefined;
  const handlers = (['SIGINT', 'SIGTERM'] as const).map((signal) => {
    const code = signal === 'SIGINT' ? 130 : 143;
    const handler = () => {
      if (first !== undefined) {
        if (Date.now() - first > 1000) exit(code);
        return;
      }
      first = Date.now();
      o.onWarn?.(`${signal}: marking the MLflow run KILLED (again to quit at once)`);
      void tracker.end('KILLED').finally(() => exit(code));
    };
    signals.on(signal, handler);
    return [signal, handler] as const;
  });
  try {
    const result = await train(tracker);
    await tracker.end('FINISHED');
    return result;
  } catch (error) {
    await tracker.end('FAILED');
    throw error;
  } finally {
    for (const [signal, handler] of handlers) signals.off(signal, handler);
  }
}

/**
 * Writes a run folder into a store after the fact: params, every epoch (timestamps: params.json's
 * start plus the epochs' seconds), the summary, artifacts; FINISHED when summary.json exists,
 * else KILLED (stopped before its end). A run already complete in that store is skipped unless forced.
 */
export async function exportRunToMlflow(runDir: string, o: { uri: string; experiment?: string; force?: boolean; env?: NodeJS.ProcessEnv }): Promise<{ link: MlflowLink; status: RunStatus; skipped: boolean }> {
  const env = o.env ?? process.env;
  const store = openMlflowStore(o.uri, env);
  const run = readRun(runDir);
  const before = readLinks(runDir)[store.uri];
  if (before?.complete && !o.force) return { link: before, status: run.summary ? 'FINISHED' : 'KILLED', skipped: true };
  // a run whose live logging stopped half-way is left marked KILLED; the export is a new, whole run
  if (before && !before.complete) await store.updateRun(before, 'KILLED', null).catch(() => {});
  const started = Date.parse(String(run.params.startedAt ?? ''));
  const startTime = Number.isFinite(started) ? started : statSync(join(runDir, 'params.json')).mtimeMs;
  const mirror = await RunMirror.create(store, runDir, { startTime, env, experiment: o.experiment });
  const lines = run.metrics as unknown as Record<string, unknown>[];
  let t = startTime;
  const timestamps = lines.map((l) => Math.round((t += 1000 * (typeof l.seconds === 'number' ? l.seconds : 0))));
  await mirror.logEpochs(lines, timestamps);
  const finished = Date.parse(String(run.summary?.finishedAt ?? ''));
  const status: RunStatus = run.summary ? 'FINISHED' : 'KILLED';
  await mirror.finish(status, Number.isFinite(finished) ? finished : (timestamps.at(-1) ?? startTime));
  return { link: mirror.link, status, skipped: false };
}
