/**
 * Each search request's AbortSignal: aborted when the client disconnects before its answer
 * (the engine then stops encoding and stage 2, and a queued request leaves the queue), or when
 * the request's time budget runs out. The budget's deadline also caps stage 2's own budget,
 * so a slow stage 2 falls back to stage 1 in time instead of failing the whole request.
 */
import type { FastifyReply } from 'fastify';
import { createError } from '../errors.js';
import { ApiError } from './errors.js';

export interface RequestControl {
  signal: AbortSignal;
  /** performance.now() by which the answer is due */
  deadline: number;
  /** milliseconds left before the deadline */
  left(): number;
  /** stops the timer and the disconnect watch */
  done(): void;
}

export function requestControl(reply: FastifyReply, budgetMs: number, retryAfterS: number): RequestControl {
  const controller = new AbortController();
  const deadline = performance.now() + budgetMs;
  const timer = setTimeout(() => {
    controller.abort(new ApiError(503, 'TIMEOUT', `the request passed the server's ${budgetMs} ms budget; try again, or ask for less (k1, mode)`, undefined, { 'retry-after': String(retryAfterS) }));
  }, budgetMs);
  const raw = reply.raw;
  // 'close' also fires after a normal response; only one before the end is a disconnect
  const onClose = () => {
    if (!raw.writableFinished) controller.abort(createError('ABORTED', 'the request (the client disconnected)'));
  };
  raw.once('close', onClose);
  return {
    signal: controller.signal,
    deadline,
    left: () => deadline - performance.now(),
    done: () => {
      clearTimeout(timer);
      raw.off('close', onClose);
    },
  };
}
