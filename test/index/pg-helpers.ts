/**
 * The project's local PostgreSQL (src/dev/pg-server.ts, what `npm run pg` runs) as a child
 * process for tests: a free port, a temporary data folder, stopped with SIGTERM at the end.
 * Tests reach it through `pg` like any server.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { packageRoot } from '../../src/util/package-root.js';

export interface PgProcess {
  /** postgres://postgres@127.0.0.1:<port>/postgres */
  url: string;
  child: ChildProcess;
  /** everything the server printed */
  output(): string;
  /** SIGTERM, then the exit code */
  stop(): Promise<number | null>;
}

/** A URL for one store table on this server, with extra query parameters. */
export const storeUrl = (server: PgProcess, table: string, extra = '') => `${server.url}?table=${table}${extra ? `&${extra}` : ''}`;

export async function startPgProcess(data: string, args: string[] = [], timeoutMs = 60_000): Promise<PgProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(packageRoot(), 'src', 'dev', 'pg-server.ts'), '--port', '0', '--data', data, ...args], {
    cwd: packageRoot(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const exited = new Promise<number | null>((done) => child.once('close', (code) => done(code)));
  const url = await new Promise<string>((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`the pg server printed no 'listening' line in ${timeoutMs} ms:\n${out}`)), timeoutMs);
    const read = (chunk: Buffer) => {
      out += chunk.toString();
      const m = /listening on (postgres:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        done(m[1]!);
      }
    };
    child.stdout!.on('data', read);
    child.stderr!.on('data', read);
    void exited.then((code) => {
      clearTimeout(timer);
      fail(new Error(`the pg server exited (${code}) before listening:\n${out}`));
    });
  });
  return {
    url,
    child,
    output: () => out,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}
