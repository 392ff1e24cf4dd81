/**
 * One error shape for every route, `{"error": {"code", "message", "field"?}}`, mapped from the
 * error codes the CLI uses (src/errors.ts: the CLI turns them into exit statuses, the server
 * into HTTP statuses), from Fastify's own errors and from the server's (overload, time-out).
 * Bad input is a 4xx naming the field; a 5xx means the server is at fault, and says no more.
 */
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { DuoError, type ErrorCode } from '../errors.js';

/** An error the server raises itself, with its status. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface ErrorBody {
  error: { code: string; message: string; field?: string };
}

/** HTTP statuses of the shared codes, beside exitCodeFor in src/errors.ts. */
export function httpStatusFor(code: ErrorCode): number {
  switch (code) {
    case 'BAD_ARGUMENT':
      return 400;
    case 'FILE_NOT_FOUND': // an indexed file gone from disk
    case 'ITEM_NOT_FOUND':
      return 404;
    case 'IMAGE_TOO_LARGE':
      return 413;
    case 'QUERY_NOT_UNDERSTOOD':
    case 'BAD_IMAGE':
      return 422;
    case 'ABORTED':
      return 499; // the client went away; nobody reads it
    case 'INDEX_LOCKED':
      return 503;
    default:
      return 500; // the index or a model is broken: the server's fault, not the request's
  }
}

/** Where the engine names a field its own way, the API's name for it (`query` is the request's `text`). */
function fieldOf(error: DuoError, queryField: string): string | undefined {
  switch (error.code) {
    case 'BAD_ARGUMENT': {
      const name = String(error.args[0] ?? '');
      return name === 'query' ? queryField : name.replace(/^--/, '') || undefined;
    }
    case 'QUERY_NOT_UNDERSTOOD':
      return 'text';
    case 'BAD_IMAGE':
    case 'IMAGE_TOO_LARGE':
      return 'image';
    case 'ITEM_NOT_FOUND':
      return 'id';
    default:
      return undefined;
  }
}

/** A message that names no server path: the client knows ids, not where the index lives. */
function publicMessage(error: DuoError): string {
  switch (error.code) {
    case 'ITEM_NOT_FOUND':
      return `no item ${String(error.args[0])} in this index`;
    case 'FILE_NOT_FOUND':
      return 'a file the index names is gone from disk';
    case 'INDEX_LOCKED':
      return 'the index is being written by another process; try again shortly';
    default:
      return httpStatusFor(error.code) >= 500 ? 'internal error: the server logged it' : error.message;
  }
}

const body = (code: string, message: string, field?: string): ErrorBody => ({ error: { code, message, ...(field ? { field } : {}) } });

/** Fastify's own 4xx errors, by code. */
const FASTIFY: Record<string, [number, string, string | undefined]> = {
  FST_ERR_CTP_BODY_TOO_LARGE: [413, 'PAYLOAD_TOO_LARGE', 'body'],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, 'UNSUPPORTED_MEDIA_TYPE', 'body'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, 'BAD_ARGUMENT', 'body'],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, 'BAD_ARGUMENT', 'body'],
  FST_ERR_CTP_INVALID_JSON_BODY: [400, 'BAD_ARGUMENT', 'body'],
  FST_INVALID_MULTIPART_CONTENT_TYPE: [415, 'UNSUPPORTED_MEDIA_TYPE', 'body'],
  FST_REQ_FILE_TOO_LARGE: [413, 'PAYLOAD_TOO_LARGE', 'image'],
  FST_FILES_LIMIT: [413, 'PAYLOAD_TOO_LARGE', 'image'],
  FST_FIELDS_LIMIT: [413, 'PAYLOAD_TOO_LARGE', 'body'],
  FST_PARTS_LIMIT: [413, 'PAYLOAD_TOO_LARGE', 'body'],
  FST_PROTO_VIOLATION: [400, 'BAD_ARGUMENT', 'body'],
  FST_MP_PREMATURE_CLOSE: [400, 'BAD_ARGUMENT', 'body'],
  // the router's, before any route (./app.ts passes them here through frameworkErrors)
  FST_ERR_BAD_URL: [400, 'BAD_ARGUMENT', undefined],
  FST_ERR_MAX_PARAM_LENGTH: [414, 'BAD_ARGUMENT', 'id'],
};

/** A validation failure's field: its path (`where.bytes`), or the unknown key itself. */
function validationField(error: FastifyError): string {
  if (!hasZodFastifySchemaValidationErrors(error)) return error.validationContext ?? 'body';
  const first = error.validation[0]!;
  const path = first.instancePath.split('/').filter(Boolean);
  const keys = (first.params as { keys?: string[] }).keys;
  if (first.keyword === 'unrecognized_keys' && keys?.[0]) path.push(keys[0]);
  return path.length > 0 ? path.join('.') : (error.validationContext ?? 'body');
}

/** The status and body for any error; `queryField` is what the route calls its query (text, image, id). */
export function toErrorReply(error: unknown, queryField = 'text'): { status: number; body: ErrorBody; headers: Record<string, string> } {
  if (error instanceof ApiError) return { status: error.status, body: body(error.code, error.message, error.field), headers: error.headers };
  if (error instanceof DuoError) {
    const field = fieldOf(error, queryField);
    return { status: httpStatusFor(error.code), body: body(error.code, publicMessage(error), field), headers: {} };
  }
  const fe = error as FastifyError;
  if (fe && Array.isArray(fe.validation)) {
    const field = validationField(fe);
    const first = fe.validation[0];
    const why = first?.keyword === 'unrecognized_keys' ? 'unknown key' : (first?.message ?? fe.message);
    return { status: 400, body: body('BAD_ARGUMENT', `${field}: ${why}`, field), headers: {} };
  }
  const known = fe?.code ? FASTIFY[fe.code] : undefined;
  if (known) return { status: known[0], body: body(known[1], fe.message, known[2]), headers: {} };
  if (fe?.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) return { status: fe.statusCode, body: body('BAD_REQUEST', fe.message), headers: {} };
  return { status: 500, body: body('INTERNAL', 'internal error: the server logged it'), headers: {} };
}

/** Fastify's `frameworkErrors`: the router's refusals (a URL that does not decode, a parameter over its length) in the one shape. */
export function frameworkErrors(error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  const { status, body: payload } = toErrorReply(error);
  void reply.code(status).send(payload);
}

/**
 * Fastify's `clientErrorHandler`: what Node's HTTP parser refuses before there is a request
 * (a malformed request line or header, headers over the limit, a body that lies about its
 * length) is answered on the socket, which is then closed, in the one shape as well.
 */
export function clientErrorHandler(error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return; // nobody to answer
  const [status, payload]: [number, ErrorBody] =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? [431, body('PAYLOAD_TOO_LARGE', 'the request line and headers are over the server limit', 'headers')]
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, body('TIMEOUT', 'the request did not arrive in time')]
        : [400, body('BAD_REQUEST', `malformed HTTP request${error.code ? ` (${error.code})` : ''}`)];
  const text = JSON.stringify(payload);
  // the answer to a HEAD request has no body, even when its headers were too long to parse
  const raw = (error as { rawPacket?: unknown }).rawPacket;
  const head = Buffer.isBuffer(raw) && raw.subarray(0, 5).toString('latin1') === 'HEAD ';
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Length: ${Buffer.byteLength(text)}\r\nContent-Type: application/json; charset=utf-8\r\nConnection: close\r\n\r\n${head ? '' : text}`);
  }
  socket.destroy(error);
}

/** Installs the error and not-found handlers: every failure leaves in the one shape. */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const queryField = (request.routeOptions.config as { queryField?: string } | undefined)?.queryField;
    const { status, body: payload, headers } = toErrorReply(error, queryField);
    if (status >= 500 && status !== 503) request.log.error({ err: error }, 'request failed');
    else if (status !== 499) request.log.info({ code: payload.error.code, field: payload.error.field }, payload.error.message);
    void reply.code(status).headers(headers).send(payload);
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send(body('NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`));
  });
}
