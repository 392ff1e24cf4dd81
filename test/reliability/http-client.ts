/**
 * Requests as sent, byte for byte: node:http with the path exactly as given (fetch would
 * normalise `..` and re-encode), or a raw socket for what no HTTP client would write (a broken
 * request line, a chunked body that lies). Answers are read whole, as bytes.
 */
import { Agent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';

export interface Sent {
  method: string;
  /** the request target as written on the wire, not normalised */
  path: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
}

export interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export class HttpClient {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 16 });
  private readonly host: string;
  private readonly port: number;

  constructor(readonly url: string) {
    const u = new URL(url);
    this.host = u.hostname;
    this.port = Number(u.port);
  }

  send(r: Sent, timeoutMs = 30_000): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        { host: this.host, port: this.port, method: r.method, path: r.path, headers: r.headers, agent: this.agent, timeout: timeoutMs },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (d: Buffer) => chunks.push(d));
          res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end(r.body);
    });
  }

  /**
   * Writes `bytes` on a fresh connection and reads until the server closes it (or `timeoutMs`):
   * the status and body of the first answer, or status 0 when the server closed without one.
   */
  raw(bytes: Buffer, timeoutMs = 5_000): Promise<Answer & { closed: boolean }> {
    return new Promise((resolve) => {
      const socket = connect(this.port, this.host);
      const chunks: Buffer[] = [];
      let done = false;
      const finish = (closed: boolean) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        socket.destroy();
        resolve({ ...parseAnswer(Buffer.concat(chunks)), closed });
      };
      const timer = setTimeout(() => finish(false), timeoutMs);
      socket.on('data', (d: Buffer) => {
        chunks.push(d);
        // one whole answer is enough: a keep-alive server would wait for the next request
        if (complete(Buffer.concat(chunks))) finish(false);
      });
      socket.on('close', () => finish(true));
      socket.on('error', () => finish(true));
      // not end(): a half-closed socket is itself a request the server may drop unanswered
      socket.write(bytes);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

function splitHead(data: Buffer): { head: string; body: Buffer } | undefined {
  const at = data.indexOf('\r\n\r\n');
  return at < 0 ? undefined : { head: data.subarray(0, at).toString('latin1'), body: data.subarray(at + 4) };
}

/** a whole answer with a Content-Length (the only kind a raw request here gets) */
function complete(data: Buffer): boolean {
  const parts = splitHead(data);
  if (!parts) return false;
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(parts.head);
  return length !== null && parts.body.length >= Number(length[1]);
}

function parseAnswer(data: Buffer): Answer {
  const parts = splitHead(data);
  if (!parts) return { status: 0, headers: {}, body: data };
  const [statusLine, ...lines] = parts.head.split('\r\n');
  const headers: IncomingHttpHeaders = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const length = Number(headers['content-length'] ?? parts.body.length);
  return { status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')?.[1] ?? 0), headers, body: parts.body.subarray(0, length) };
}
