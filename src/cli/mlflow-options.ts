/**
 * `--mlflow [uri]` / `--no-mlflow`, shared by the training commands (`duo train`, `train-cross`,
 * `train-head`), and the call that wraps a training in an MLflow tracker (src/train/mlflow.ts).
 * Off unless asked: `--mlflow` (MLFLOW_TRACKING_URI, else mlruns/ beside the runs folder),
 * `--mlflow <uri>`, or MLFLOW_TRACKING_URI set in the environment.
 */
import type { Command } from 'commander';
import { openMlflowStore, resolveTrackingUri, trackTraining, type TrainingTracker } from '../train/mlflow.js';

export function addMlflowOptions(command: Command): Command {
  return command
    .option('--mlflow [uri]', 'also log the run to MLflow: a tracking server (http://host:5000) or a file store (file:./mlruns or a folder); alone: MLFLOW_TRACKING_URI, else mlruns/ beside --runs. On by itself when MLFLOW_TRACKING_URI is set')
    .option('--no-mlflow', 'do not log to MLflow, even when MLFLOW_TRACKING_URI is set');
}

/**
 * The tracking URI for a command's options: a bad `--mlflow <uri>` is a usage error; a bad
 * MLFLOW_TRACKING_URI (set for other tools, e.g. `databricks`) is a warning and no tracking.
 */
export function mlflowUri(flag: string | boolean | undefined, runsDir: string): string | undefined {
  const uri = resolveTrackingUri(flag, runsDir);
  if (uri === undefined) return undefined;
  try {
    openMlflowStore(uri);
    return uri;
  } catch (error) {
    if (typeof flag === 'string') throw error;
    console.error(`warning: MLFLOW_TRACKING_URI: ${(error as Error).message}; the run is not logged to MLflow`);
    return undefined;
  }
}

/** Runs a training command's work with MLflow tracking as its options ask. */
export function withMlflow<T>(o: Record<string, unknown>, runDir: string, train: (tracker: TrainingTracker | undefined) => Promise<T>): Promise<T> {
  return trackTraining(
    {
      uri: mlflowUri(o.mlflow as string | boolean | undefined, String(o.runs)),
      runDir,
      fresh: !o.resume,
      onWarn: (m) => console.error(`warning: ${m}`),
      onInfo: (m) => console.log(m),
    },
    train,
  );
}
