/**
 * A `duo serve` in its own process on a free loopback port, for the reliability tests and the
 * soak bench: started from the TypeScript source through tsx (so it runs the working tree, not a
 * dist/ that may be stale) or from the compiled command; its JSON log lines are read as they
 * come (a pipe nobody reads would stall the server), the error lines kept; its memory is read
 * from its own Prometheus metrics (prom-client's default process metrics, prefixed `duo_`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { packageRoot } from '../../src/util/package-root.js';

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export interface ServeChild {
  url: string;
  child: ChildProcess;
  /** log lines at level error (50) or above, as the server wrote them */
  errors: LogLine[];
  /** the process is still running */
  alive(): boolean;
  /** a full garbage collection in the server, then a pause for it to finish (only with `gcOnSignal`) */
  collectGarbage(): Promise<void>;
  /** SIGTERM, then its exit status (SIGKILL after `graceMs`) */
  stop(graceMs?: number): Promise<number | null>;
}

export interface ServeChildOptions {
  /** run bin/duo.js (dist/) instead of src/cli/main.ts through tsx */
  compiled?: boolean;
  /** how long to wait for `ready` (loading and warming the models) */
  readyTimeoutMs?: number;
  /**
   * start node with --expose-gc and a SIGUSR2 handler that runs two full collections: the
   * product has no way to ask for one, and a memory test must read what is live, not what
   * garbage V8 has not collected yet (it may let 100 MiB of it build up before a full collection)
   */
  gcOnSignal?: boolean;
}

/** test instrumentation loaded before the server: SIGUSR2 → full collections, then a line on stderr saying they ran */
const GC_DONE = 'duo-test: collections done';
const GC_HOOK = `data:text/javascript,process.on('SIGUSR2', () => { globalThis.gc(); globalThis.gc(); process.stderr.write('${GC_DONE}\\n'); });`;

/** Starts `duo serve --port 0 <args>` and resolves once it logs `ready`, with its URL. */
export function startServeChild(args: string[], o: ServeChildOptions = {}): Promise<ServeChild> {
  const root = packageRoot();
  const command = o.compiled ? [join(root, 'bin', 'duo.js')] : ['--import', 'tsx', join(root, 'src', 'cli', 'main.ts')];
  // cwd: the package root, where `--import tsx` resolves; every path in args is absolute
  const gc = o.gcOnSignal ? ['--expose-gc', '--import', GC_HOOK] : [];
  const child = spawn(process.execPath, [...gc, ...command, 'serve', '--port', '0', ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  const errors: LogLine[] = [];
  let stderr = '';
  // collections asked for and not yet reported done, resolved in order by the hook's line
  const collecting: (() => void)[] = [];
  createInterface({ input: child.stderr! }).on('line', (line) => {
    if (line === GC_DONE) return collecting.shift()?.();
    if (stderr.length < 64 << 10) stderr += `${line}\n`;
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`duo serve was not ready within ${o.readyTimeoutMs ?? 120_000} ms: ${stderr}`));
    }, o.readyTimeoutMs ?? 120_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      // every request is one info line: only the few that matter are parsed
      if (!line.includes('"msg":"ready"') && !/"level":[56]\d/.test(line)) return;
      let entry: LogLine;
      try {
        entry = JSON.parse(line) as LogLine;
      } catch {
        return;
      }
      if (entry.level >= 50 && errors.length < 1000) errors.push(entry);
      if (entry.msg === 'ready' && typeof entry.url === 'string') {
        clearTimeout(timer);
        resolve({
          url: entry.url,
          child,
          errors,
          alive: () => child.exitCode === null && child.signalCode === null,
          collectGarbage: async () => {
            if (!o.gcOnSignal) throw new Error('start the server with gcOnSignal to collect its garbage');
            const done = new Promise<void>((r) => collecting.push(r));
            child.kill('SIGUSR2');
            await done;
          },
          stop: async (graceMs = 15_000) => {
            if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
            child.kill('SIGTERM');
            const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
            const code = await exited;
            clearTimeout(kill);
            return code;
          },
        });
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`duo serve exited with ${code} before it was ready: ${stderr}`));
    });
  });
}

/** A sample's value in the Prometheus text format (a metric without labels). */
export function metricValue(text: string, name: string): number | undefined {
  const m = new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

export interface MemorySample {
  /** resident set size, bytes */
  rss: number;
  /** V8 heap in use, bytes */
  heapUsed: number;
  /** memory outside the V8 heap that JavaScript objects hold (ArrayBuffers: Buffers, typed arrays), bytes */
  external: number;
}

/** The server's own memory, from GET /metrics. */
export async function memoryOf(url: string): Promise<MemorySample> {
  const response = await fetch(`${url}/metrics`);
  const text = await response.text();
  const rss = metricValue(text, 'duo_process_resident_memory_bytes');
  const heapUsed = metricValue(text, 'duo_nodejs_heap_size_used_bytes');
  const external = metricValue(text, 'duo_nodejs_external_memory_bytes');
  if (rss === undefined || heapUsed === undefined || external === undefined) {
    throw new Error(`/metrics lacks duo_process_resident_memory_bytes, duo_nodejs_heap_size_used_bytes or duo_nodejs_external_memory_bytes (status ${response.status})`);
  }
  return { rss, heapUsed, external };
}

/**
 * Memory once the server has been idle a while: V8 collects garbage on idle notifications and
 * allocation, not on a timer, so `samples` readings `everyMs` apart are taken and the lowest
 * RSS kept (the level it settles to, not a collection caught half-way).
 */
export async function settledMemory(url: string, samples = 5, everyMs = 400): Promise<MemorySample> {
  let best: MemorySample | undefined;
  for (let i = 0; i < samples; i++) {
    await new Promise((r) => setTimeout(r, everyMs));
    const m = await memoryOf(url);
    if (!best || m.rss < best.rss) best = m;
  }
  return best!;
}

export const MiB = 1 << 20;
export const mib = (bytes: number) => Math.round((bytes / MiB) * 10) / 10;
