/**
 * A local PostgreSQL with pgvector for development and tests: PGlite (PostgreSQL compiled to
 * WebAssembly) with its pgvector extension, served on a TCP port by pglite-socket, so `pg`
 * and psql talk to it as to any server.
 *
 *   npm run pg -- --port 5432 --data .pg [--host 127.0.0.1] [--max-connections 32]
 *
 * Prints one line containing `listening` (with the URL to give `--index`) once it accepts
 * connections; SIGINT/SIGTERM close the connections and shut the database down cleanly.
 * `--port 0` takes a free port (the line says which). Without `--data` the database lives in
 * memory. Every connection shares PGlite's one session (session-queue.ts): statements run one
 * at a time, session settings (SET) are shared, and a transaction holds everyone else until it
 * ends.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { resolve } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import { PGLiteSocketHandler, type PGLiteSocketHandlerOptions } from '@electric-sql/pglite-socket';
import { SessionQueue } from './session-queue.js';

export interface PgServerOptions {
  port?: number;
  host?: string;
  /** data directory (created when missing); default: in memory */
  data?: string;
  maxConnections?: number;
  log?: (line: string) => void;
}

export interface PgServer {
  /** postgres://postgres@host:port/postgres */
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

/** An ErrorResponse (FATAL 53300) for a connection over the limit, in place of pglite-socket's plain-text refusal. */
function tooManyConnections(limit: number): Buffer {
  const fields = [`SFATAL`, `VFATAL`, `C53300`, `Msorry, too many clients already (the limit is ${limit}; raise --max-connections)`];
  const body = Buffer.concat([...fields.map((f) => Buffer.from(`${f}\0`)), Buffer.from([0])]);
  const head = Buffer.alloc(5);
  head.write('E', 0);
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

export async function startPgServer(o: PgServerOptions = {}): Promise<PgServer> {
  const log = o.log ?? (() => {});
  const host = o.host ?? '127.0.0.1';
  const limit = o.maxConnections ?? 32;
  const db = await PGlite.create({ dataDir: o.data ? resolve(o.data) : undefined, extensions: { vector } });
  const queue = new SessionQueue(db, log);
  const handlers = new Set<PGLiteSocketHandler>();
  /** every socket until it closes (stop() destroys what is left) */
  const sockets = new Set<Socket>();
  /** the connections counted against the limit: a client that hung up ('end', before it sees its close) no longer counts */
  const live = new Set<Socket>();
  const server: Server = createServer((socket: Socket) => {
    sockets.add(socket);
    socket.once('end', () => live.delete(socket));
    socket.once('close', () => {
      live.delete(socket);
      sockets.delete(socket);
    });
    if (live.size >= limit) {
      socket.end(tooManyConnections(limit));
      return;
    }
    live.add(socket);
    // pglite-socket's handler frames the protocol; our queue decides whose message runs next
    const handler = new PGLiteSocketHandler({ queryQueue: queue as unknown as PGLiteSocketHandlerOptions['queryQueue'], closeOnDetach: true });
    handlers.add(handler);
    const forget = () => handlers.delete(handler);
    handler.addEventListener('close', forget);
    handler.addEventListener('error', forget);
    handler.attach(socket).catch((error: unknown) => {
      log(`connection refused: ${(error as Error).message}`);
      forget();
      socket.destroy();
    });
  });
  await new Promise<void>((done, fail) => {
    server.once('error', fail);
    server.listen(o.port ?? 5432, host, () => {
      server.off('error', fail);
      done();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : (o.port ?? 5432);
  let stopping: Promise<void> | undefined;
  return {
    url: `postgres://postgres@${host}:${port}/postgres`,
    port,
    stop: () =>
      (stopping ??= (async () => {
        const closed = new Promise<void>((done) => server.close(() => done()));
                await Promise.all([...handlers].map((h) => h.detach(true)));
        handlers.clear();
        for (const socket of sockets) socket.destroy(); // refused and half-closed ones too
        await closed;
        await db.close();
      })()),
  };
}

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string', default: '5432' },
      host: { type: 'string', default: '127.0.0.1' },
      data: { type: 'string' },
      'max-connections': { type: 'string', default: '32' },
      verbose: { type: 'boolean', default: false },
    },
  });
  const port = Number(values.port);
  const maxConnections = Number(values['max-connections']);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port: ${values.port} is not a port number`);
  if (!Number.isInteger(maxConnections) || maxConnections < 1) throw new Error(`--max-connections: ${values['max-connections']} is not a positive integer`);
  const started = performance.now();
  const server = await startPgServer({ port, host: values.host, data: values.data, maxConnections, log: values.verbose ? (l) => console.error(`pg: ${l}`) : undefined });
  const where = values.data ? `data ${resolve(values.data)}` : 'in memory';
  console.log(`pg: listening on ${server.url} (PGlite with pgvector, ${where}, up to ${maxConnections} connections, ready in ${Math.round(performance.now() - started)} ms)`);
  let signals = 0;
  const shutdown = (signal: string) => {
    if (signals++ > 0) process.exit(1); // a second Ctrl-C does not wait
    console.log(`pg: ${signal}: stopping`);
    server.stop().then(
      () => {
        console.log('pg: stopped');
        process.exit(0);
      },
      (error: unknown) => {
        console.error(`pg: ${(error as Error).message}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    console.error(`pg: ${(error as Error).message}`);
    process.exit(1);
  });
}
