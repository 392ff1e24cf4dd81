/**
 * A bounded queue for model work (stage 2, and image queries' backbone pass): at most
 * `concurrency` run at once, at most `length` wait; one more is refused at once (the caller
 * answers 503 + Retry-After, or runs stage 1 alone). A waiter whose request is cancelled or
 * runs out of time leaves the queue without ever taking a slot.
 */
export class QueueFull extends Error {
  constructor(readonly waiting: number) {
    super(`the model queue is full (${waiting} waiting)`);
    this.name = 'QueueFull';
  }
}

interface Waiter {
  resolve: (release: () => void) => void;
  reject: (reason: unknown) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

export class WorkQueue {
  private running = 0;
  private readonly waiters: Waiter[] = [];
  /** work refused because the queue was full, since the start */
  rejected = 0;

  constructor(
    readonly concurrency: number,
    readonly length: number,
  ) {}

  get depth(): number {
    return this.waiters.length;
  }

  get active(): number {
    return this.running;
  }

  /** A slot: resolves with its release function once the work may run; rejects with QueueFull, or the signal's reason. */
  acquire(signal?: AbortSignal): Promise<() => void> {
    signal?.throwIfAborted();
    if (this.running < this.concurrency) {
      this.running++;
      return Promise.resolve(this.releaser());
    }
    if (this.waiters.length >= this.length) {
      this.rejected++;
      return Promise.reject(new QueueFull(this.waiters.length));
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, signal };
      if (signal) {
        waiter.onAbort = () => {
          const at = this.waiters.indexOf(waiter);
          if (at >= 0) this.waiters.splice(at, 1);
          reject(signal.reason);
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.waiters.push(waiter);
    });
  }

  /** Runs `work` in a slot. */
  async run<T>(work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const release = await this.acquire(signal);
    try {
      return await work();
    } finally {
      release();
    }
  }

  private releaser(): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.waiters.shift();
      if (!next) {
        this.running--;
        return;
      }
      if (next.onAbort) next.signal!.removeEventListener('abort', next.onAbort);
      next.resolve(this.releaser()); // the slot passes straight to the next waiter
    };
  }
}
