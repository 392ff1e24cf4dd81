/**
 * An MLflow tracking server through its REST API 2.0 (node's fetch):
 * `experiments/get-by-name`, `experiments/create`, `runs/create`, `runs/log-batch` (split to the
 * server's limits: 1000 metrics, 100 params, 100 tags, 1000 entities a call) and `runs/update`.
 * Artifacts go through the server's artifact proxy (`mlflow-artifacts/artifacts/…`) when the run's
 * artifact URI is an `mlflow-artifacts:` one; a server that stores artifacts elsewhere (S3, a
 * shared folder) gets none from here. MLFLOW_TRACKING_TOKEN (bearer) or MLFLOW_TRACKING_USERNAME
 * and MLFLOW_TRACKING_PASSWORD (basic) authenticate, as in MLflow's own client.
 */
import { readFileSync } from 'node:fs';
import { LIMITS, type KeyValue, type Metric, type MlflowStore, type NewRun, type RunStatus, type StoredRun } from './store.js';

export class MlflowRestError extends Error {
  constructor(
    readonly endpoint: string,
    readonly status: number,
    readonly errorCode: string | undefined,
    message: string,
  ) {
    super(message);
    this.name = 'MlflowRestError';
  }
}

interface RunInfoJson {
  run_id: string;
  experiment_id: string;
  artifact_uri?: string;
}

/** Splits one batch into requests within MLflow's log-batch limits. */
export function splitBatch(batch: { metrics?: Metric[]; params?: KeyValue[]; tags?: KeyValue[] }): { metrics: Metric[]; params: KeyValue[]; tags: KeyValue[] }[] {
  const metrics = [...(batch.metrics ?? [])];
  const params = [...(batch.params ?? [])];
  const tags = [...(batch.tags ?? [])];
  const out = [];
  while (metrics.length + params.length + tags.length > 0) {
    const p = params.splice(0, LIMITS.paramsPerBatch);
    const t = tags.splice(0, LIMITS.tagsPerBatch);
    const m = metrics.splice(0, Math.min(LIMITS.metricsPerBatch, LIMITS.entitiesPerBatch - p.length - t.length));
    out.push({ metrics: m, params: p, tags: t });
  }
  return out;
}

/** JSON has no NaN or Infinity; protobuf's JSON mapping takes them as strings. */
const jsonDouble = (v: number): number | string => (Number.isNaN(v) ? 'NaN' : v === Infinity ? 'Infinity' : v === -Infinity ? '-Infinity' : v);

export class RestStore implements MlflowStore {
  readonly uri: string;

  constructor(
    uri: string,
    private readonly env: NodeJS.ProcessEnv = process.env,
    private readonly timeoutMs = 15_000,
  ) {
    this.uri = uri.replace(/\/+$/, '');
  }

  private headers(json: boolean): Record<string, string> {
    const h: Record<string, string> = json ? { 'content-type': 'application/json' } : { 'content-type': 'application/octet-stream' };
    if (this.env.MLFLOW_TRACKING_TOKEN) h.authorization = `Bearer ${this.env.MLFLOW_TRACKING_TOKEN}`;
    else if (this.env.MLFLOW_TRACKING_USERNAME) h.authorization = `Basic ${Buffer.from(`${this.env.MLFLOW_TRACKING_USERNAME}:${this.env.MLFLOW_TRACKING_PASSWORD ?? ''}`).toString('base64')}`;
    return h;
  }

  private async call<T>(method: 'GET' | 'POST', endpoint: string, body?: unknown): Promise<T> {
    const url = `${this.uri}/api/2.0/mlflow/${endpoint}`;
    let response: Response;
    try {
      response = await fetch(url, { method, headers: this.headers(true), body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (error) {
      throw new MlflowRestError(endpoint, 0, undefined, `MLflow server ${this.uri} unreachable (${endpoint}): ${(error as Error).cause ?? (error as Error).message}`);
    }
    const text = await response.text();
    let json: Record<string, unknown> = {};
    try {
      json = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    } catch {
      // an HTML error page from a proxy: reported by status below
    }
    if (!response.ok) {
      const code = typeof json.error_code === 'string' ? json.error_code : undefined;
      const message = typeof json.message === 'string' ? json.message : text.slice(0, 200);
      throw new MlflowRestError(endpoint, response.status, code, `MLflow server ${this.uri}: ${endpoint} answered HTTP ${response.status}${code ? ` ${code}` : ''}: ${message}`);
    }
    return json as T;
  }

  async experimentId(name: string): Promise<string> {
    try {
      const { experiment } = await this.call<{ experiment: { experiment_id: string; lifecycle_stage?: string } }>('GET', `experiments/get-by-name?experiment_name=${encodeURIComponent(name)}`);
      if (experiment.lifecycle_stage === 'deleted') throw new Error(`MLflow experiment "${name}" is deleted on ${this.uri}: restore it to log to it`);
      return experiment.experiment_id;
    } catch (error) {
      if (!(error instanceof MlflowRestError) || error.errorCode !== 'RESOURCE_DOES_NOT_EXIST') throw error;
    }
    try {
      return (await this.call<{ experiment_id: string }>('POST', 'experiments/create', { name })).experiment_id;
    } catch (error) {
      // created meanwhile by another run
      if (error instanceof MlflowRestError && error.errorCode === 'RESOURCE_ALREADY_EXISTS') {
        return (await this.call<{ experiment: { experiment_id: string } }>('GET', `experiments/get-by-name?experiment_name=${encodeURIComponent(name)}`)).experiment.experiment_id;
      }
      throw error;
    }
  }

  async createRun(experimentId: string, run: NewRun): Promise<StoredRun> {
    const { run: created } = await this.call<{ run: { info: RunInfoJson } }>('POST', 'runs/create', {
      experiment_id: experimentId,
      user_id: run.userId,
      run_name: run.runName,
      start_time: run.startTime,
      tags: run.tags,
    });
    return { experimentId: created.info.experiment_id ?? experimentId, runId: created.info.run_id, artifactUri: created.info.artifact_uri ?? '' };
  }

  async logBatch(run: StoredRun, batch: { metrics?: Metric[]; params?: KeyValue[]; tags?: KeyValue[] }): Promise<void> {
    for (const part of splitBatch(batch)) {
      await this.call('POST', 'runs/log-batch', {
        run_id: run.runId,
        metrics: part.metrics.map((m) => ({ key: m.key, value: jsonDouble(m.value), timestamp: Math.round(m.timestamp), step: Math.round(m.step) })),
        params: part.params,
        tags: part.tags,
      });
    }
  }

  async updateRun(run: StoredRun, status: RunStatus, endTime: number | null): Promise<void> {
    await this.call('POST', 'runs/update', endTime === null ? { run_id: run.runId, status } : { run_id: run.runId, status, end_time: endTime });
  }

  async logArtifact(run: StoredRun, localPath: string, name: string): Promise<boolean> {
    // mlflow-artifacts:/<path> or mlflow-artifacts://host:port/<path> → <server>/api/2.0/mlflow-artifacts/artifacts/<path>
    const match = /^mlflow-artifacts:(?:\/\/[^/]*)?\/?(.*)$/.exec(run.artifactUri);
    if (!match) return false;
    const path = [...match[1]!.split('/'), ...name.split('/')].filter(Boolean).map(encodeURIComponent).join('/');
    const url = `${this.uri}/api/2.0/mlflow-artifacts/artifacts/${path}`;
    const response = await fetch(url, { method: 'PUT', headers: this.headers(false), body: readFileSync(localPath), signal: AbortSignal.timeout(this.timeoutMs) }).catch((error: Error) => {
      throw new MlflowRestError('mlflow-artifacts', 0, undefined, `MLflow server ${this.uri} unreachable (artifact ${name}): ${error.cause ?? error.message}`);
    });
    if (!response.ok) throw new MlflowRestError('mlflow-artifacts', response.status, undefined, `MLflow server ${this.uri}: artifact upload of ${name} answered HTTP ${response.status}`);
    return true;
  }
}
