/**
 * What duo-search needs of an MLflow tracking store, in MLflow's own terms (its AbstractStore:
 * get-or-create an experiment, create a run, log a batch, update the run's status), with two
 * implementations: the file store MLflow reads from `mlruns/` (file-store.ts) and a tracking
 * server's REST API 2.0 (rest-store.ts). The formats follow mlflow/store/tracking/file_store.py,
 * mlflow/utils/validation.py and mlflow/entities/run_status.py.
 */

/** MLflow's RunStatus: the file store keeps the number in meta.yaml, the REST API the name. */
export const RUN_STATUS = { RUNNING: 1, SCHEDULED: 2, FINISHED: 3, FAILED: 4, KILLED: 5 } as const;
export type RunStatus = keyof typeof RUN_STATUS;

/** MLflow's SourceType.LOCAL, which the file store writes for every run */
export const SOURCE_TYPE_LOCAL = 4;

/** MLflow's limits on one log-batch request and on keys and values (validation.py). */
export const LIMITS = { metricsPerBatch: 1000, paramsPerBatch: 100, tagsPerBatch: 100, entitiesPerBatch: 1000, keyLength: 250, paramValue: 6000, tagValue: 5000 } as const;

export interface Metric {
  key: string;
  value: number;
  /** milliseconds since the epoch */
  timestamp: number;
  step: number;
}

export interface KeyValue {
  key: string;
  value: string;
}

/** A run as a store knows it. */
export interface StoredRun {
  experimentId: string;
  runId: string;
  artifactUri: string;
}

export interface NewRun {
  runName: string;
  userId: string;
  startTime: number;
  tags: KeyValue[];
}

export interface MlflowStore {
  /** where it writes, as a tracking URI (file:///abs/mlruns or http://host:port) */
  readonly uri: string;
  /** the id of the active experiment of this name, created when there is none */
  experimentId(name: string): Promise<string>;
  createRun(experimentId: string, run: NewRun): Promise<StoredRun>;
  logBatch(run: StoredRun, batch: { metrics?: Metric[]; params?: KeyValue[]; tags?: KeyValue[] }): Promise<void>;
  /** sets the status; endTime null marks the run as not ended (a resumed run) */
  updateRun(run: StoredRun, status: RunStatus, endTime: number | null): Promise<void>;
  /** copies a local file into the run's artifacts; false when this store cannot take artifacts */
  logArtifact(run: StoredRun, localPath: string, name: string): Promise<boolean>;
}

/**
 * A key MLflow accepts for a param, metric or tag: alphanumerics, `_ - . /` and spaces only, no
 * segment that a path would resolve away (`a//b`, `./a`, `..`), at most 250 characters. Other
 * characters become `_` (`dev/textToImage/R@10` → `dev/textToImage/R_10`).
 */
export function sanitizeKey(key: string): string {
  const segments = key
    .replace(/[^\w.\- /]/g, '_')
    .split('/')
    .filter((s) => s !== '')
    .map((s) => (s === '.' || s === '..' ? '_' : s));
  return (segments.join('/') || '_').slice(0, LIMITS.keyLength);
}

/**
 * A metric value as Python's `str(float)` writes it, which is what MLflow's file store puts in
 * a metric file (`12.0`, `0.5`, `1e-05`, `nan`, `inf`); MLflow reads it back with `float()`.
 */
export function pythonFloat(v: number): string {
  if (Number.isNaN(v)) return 'nan';
  if (!Number.isFinite(v)) return v > 0 ? 'inf' : '-inf';
  if (v === 0) return Object.is(v, -0) ? '-0.0' : '0.0';
  const [mantissa, exp] = v.toExponential().split('e') as [string, string];
  const e = Number(exp);
  if (e < -4 || e >= 16) return `${mantissa}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
  const fixed = v.toFixed(Math.max(0, (mantissa.split('.')[1]?.length ?? 0) - e));
  return fixed.includes('.') ? fixed : `${fixed}.0`;
}

/** One metric-file line, as MLflow's FileStore._log_run_metric writes it: `<timestamp> <value> <step>` */
export const metricLine = (m: Metric) => `${Math.round(m.timestamp)} ${pythonFloat(m.value)} ${Math.round(m.step)}\n`;
