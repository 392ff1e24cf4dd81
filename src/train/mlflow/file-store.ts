/**
 * MLflow's file store, the layout `mlflow ui --backend-store-uri file:./mlruns` reads
 * (mlflow/store/tracking/file_store.py):
 *
 *   mlruns/.trash/                          deleted experiments
 *   mlruns/0/meta.yaml                      the Default experiment, made with the store
 *   mlruns/<experiment_id>/meta.yaml        artifact_location, creation_time, experiment_id, last_update_time, lifecycle_stage, name
 *   mlruns/<experiment_id>/<run_id>/meta.yaml   artifact_uri, end_time, entry_point_name, experiment_id, lifecycle_stage,
 *                                               run_id, run_name, run_uuid, source_name, source_type, source_version,
 *                                               start_time, status (RunStatus number), tags: [], user_id
 *   …/<run_id>/params/<key>                 the value, no trailing newline
 *   …/<run_id>/metrics/<key>                one line per value: `<timestamp ms> <value> <step>`
 *   …/<run_id>/tags/<key>                   the value, no trailing newline
 *   …/<run_id>/artifacts/
 *
 * Keys holding `/` are folders (`metrics/dev/rsum`). meta.yaml is written as PyYAML's safe_dump
 * with sort_keys writes it; every file is written atomically.
 */
import { randomInt, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parse, stringify } from 'yaml';
import { writeFileAtomic } from '../../util/atomic-write.js';
import { metricLine, RUN_STATUS, SOURCE_TYPE_LOCAL, type KeyValue, type Metric, type MlflowStore, type NewRun, type RunStatus, type StoredRun } from './store.js';

export const DEFAULT_EXPERIMENT = { id: '0', name: 'Default' } as const;
const TRASH = '.trash';
/** folders at the root of mlruns/ that are not experiments (the model registry's) */
const NOT_EXPERIMENTS = new Set([TRASH, 'models']);

/** PyYAML's `safe_dump(default_flow_style=False, sort_keys=True)` style: sorted keys, block style, 'single' quotes. */
export const toYaml = (value: Record<string, unknown>) => stringify(value, { sortMapEntries: true, singleQuote: true });

/** MLflow's _generate_unique_integer_id: 18 decimal digits, the first not 0. */
export function experimentIdNumber(): string {
  let id = String(randomInt(1, 10));
  while (id.length < 18) id += String(randomInt(0, 10));
  return id;
}

export class FileStore implements MlflowStore {
  readonly root: string;
  readonly uri: string;

  constructor(root: string) {
    this.root = resolve(root);
    this.uri = pathToFileURL(this.root).href;
  }

  /** Creates the root with the Default experiment (as MLflow does for a root that does not exist) and .trash. */
  async init(): Promise<void> {
    const fresh = !existsSync(this.root) || readdirSync(this.root).length === 0;
    mkdirSync(join(this.root, TRASH), { recursive: true });
    if (fresh) await this.writeExperiment(DEFAULT_EXPERIMENT.id, DEFAULT_EXPERIMENT.name);
  }

  private experiments(parent: string): { id: string; meta: Record<string, unknown> }[] {
    if (!existsSync(parent)) return [];
    return readdirSync(parent, { withFileTypes: true })
      .filter((d) => d.isDirectory() && !NOT_EXPERIMENTS.has(d.name) && existsSync(join(parent, d.name, 'meta.yaml')))
      .map((d) => ({ id: d.name, meta: parse(readFileSync(join(parent, d.name, 'meta.yaml'), 'utf8')) as Record<string, unknown> }));
  }

  async experimentId(name: string): Promise<string> {
    await this.init();
    const active = this.experiments(this.root).find((e) => e.meta.name === name && e.meta.lifecycle_stage !== 'deleted');
    if (active) return active.id;
    if (this.experiments(join(this.root, TRASH)).some((e) => e.meta.name === name)) {
      throw new Error(`MLflow experiment "${name}" is deleted (in ${join(this.root, TRASH)}): restore it, or remove it from .trash, to log to it`);
    }
    let id = experimentIdNumber();
    while (existsSync(join(this.root, id)) || existsSync(join(this.root, TRASH, id))) id = experimentIdNumber();
    await this.writeExperiment(id, name);
    return id;
  }

  private async writeExperiment(id: string, name: string): Promise<void> {
    const now = Date.now();
    await writeFileAtomic(
      join(this.root, id, 'meta.yaml'),
      toYaml({ artifact_location: `${this.uri}/${id}`, creation_time: now, experiment_id: id, last_update_time: now, lifecycle_stage: 'active', name }),
    );
  }

  private runDir(run: StoredRun): string {
    return join(this.root, run.experimentId, run.runId);
  }

  async createRun(experimentId: string, run: NewRun): Promise<StoredRun> {
    const metaPath = join(this.root, experimentId, 'meta.yaml');
    const experiment = parse(readFileSync(metaPath, 'utf8')) as { artifact_location: string };
    const runId = randomUUID().replace(/-/g, '');
    const stored: StoredRun = { experimentId, runId, artifactUri: `${experiment.artifact_location.replace(/\/$/, '')}/${runId}/artifacts` };
    const dir = this.runDir(stored);
    for (const sub of ['metrics', 'params', 'artifacts', 'tags']) mkdirSync(join(dir, sub), { recursive: true });
    await this.writeRunMeta(stored, {
      run_name: run.runName,
      user_id: run.userId,
      start_time: run.startTime,
      end_time: null,
      status: RUN_STATUS.RUNNING,
      // create_run writes deleted_time: null; later rewrites of meta.yaml leave it out
      deleted_time: null,
    });
    const tags = run.tags.some((t) => t.key === 'mlflow.runName') ? run.tags : [...run.tags, { key: 'mlflow.runName', value: run.runName }];
    await this.logBatch(stored, { tags });
    return stored;
  }

  private async writeRunMeta(run: StoredRun, fields: Record<string, unknown>): Promise<void> {
    await writeFileAtomic(
      join(this.runDir(run), 'meta.yaml'),
      toYaml({
        artifact_uri: run.artifactUri,
        entry_point_name: '',
        experiment_id: run.experimentId,
        lifecycle_stage: 'active',
        run_id: run.runId,
        run_uuid: run.runId,
        source_name: '',
        source_type: SOURCE_TYPE_LOCAL,
        source_version: '',
        tags: [],
        ...fields,
      }),
    );
  }

  async logBatch(run: StoredRun, batch: { metrics?: Metric[]; params?: KeyValue[]; tags?: KeyValue[] }): Promise<void> {
    const dir = this.runDir(run);
    for (const p of batch.params ?? []) await writeFileAtomic(join(dir, 'params', p.key), p.value);
    const byKey = new Map<string, Metric[]>();
    for (const m of batch.metrics ?? []) byKey.set(m.key, [...(byKey.get(m.key) ?? []), m]);
    for (const [key, lines] of byKey) {
      // MLflow appends; rewriting the whole (small) file keeps every write atomic
      const path = join(dir, 'metrics', key);
      const before = existsSync(path) ? readFileSync(path, 'utf8') : '';
      await writeFileAtomic(path, before + lines.map(metricLine).join(''));
    }
    for (const t of batch.tags ?? []) await writeFileAtomic(join(dir, 'tags', t.key), t.value);
  }

  async updateRun(run: StoredRun, status: RunStatus, endTime: number | null): Promise<void> {
    const meta = parse(readFileSync(join(this.runDir(run), 'meta.yaml'), 'utf8')) as Record<string, unknown>;
    await this.writeRunMeta(run, { run_name: meta.run_name, user_id: meta.user_id, start_time: meta.start_time, end_time: endTime, status: RUN_STATUS[status] });
  }

  async logArtifact(run: StoredRun, localPath: string, name: string): Promise<boolean> {
    await writeFileAtomic(join(this.runDir(run), 'artifacts', name), readFileSync(localPath));
    return true;
  }
}
