/**
 * PGlite is one PostgreSQL session; pglite-socket multiplexes many client connections onto
 * it by queueing their protocol messages. Its own queue (0.2.17) keeps a connection's
 * messages together only while a transaction is open, so the Parse/Bind/Execute/Sync of two
 * clients can interleave and bind one client's parameters to the other's statement (upstream
 * electric-sql/pglite#1046, PR #977); and one failed message leaves the queue stuck. This
 * queue, given to pglite-socket's PGLiteSocketHandler in its place, holds the session for one
 * connection from its first message until the exchange ends (Sync, a simple Query or the
 * startup packet, outside a transaction), and keeps serving after a failure.
 */
import type { PGlite } from '@electric-sql/pglite';

interface Queued {
  handlerId: number;
  message: Uint8Array;
  onData: (data: Uint8Array) => void;
  resolve: (bytes: number) => void;
  reject: (error: Error) => void;
}

const SYNC = 0x53; // 'S'
const QUERY = 0x51; // 'Q'
const TERMINATE = 0x58; // 'X'
/** a Sync message: ends an extended-protocol exchange a vanished client left open */
const SYNC_MESSAGE = Uint8Array.of(SYNC, 0, 0, 0, 4);

/** True when a message closes an exchange (the backend answers ReadyForQuery, or the client leaves). */
function endsExchange(message: Uint8Array): boolean {
  const type = message[0];
  // the startup packet has no type byte: its first byte is the high byte of its length, 0
  return type === SYNC || type === QUERY || type === TERMINATE || type === 0;
}

export class SessionQueue {
  private queue: Queued[] = [];
  private processing = false;
  /** the connection holding the session: mid-exchange, or inside a transaction */
  private owner: number | undefined;
  /** whether the owner is between a Parse/Bind/… and its Sync */
  private midExchange = false;

  constructor(
    private readonly db: PGlite,
    private readonly log: (line: string) => void = () => {},
  ) {}

  enqueue(handlerId: number, message: Uint8Array, onData: (data: Uint8Array) => void): Promise<number> {
    return new Promise((resolve, reject) => {
      this.queue.push({ handlerId, message, onData, resolve, reject });
      void this.pump();
    });
  }

  getQueueLength(): number {
    return this.queue.length;
  }

  /** A connection went away: drop what it queued. */
  clearQueueForHandler(handlerId: number): void {
    const kept: Queued[] = [];
    for (const q of this.queue) {
      if (q.handlerId === handlerId) q.reject(new Error('the connection closed'));
      else kept.push(q);
    }
    this.queue = kept;
  }

  /** A connection went away while holding the session: end its exchange and roll back its transaction. */
  async clearTransactionIfNeeded(handlerId: number): Promise<void> {
    if (this.owner !== handlerId) return;
    await this.db.runExclusive(async () => {
      if (this.midExchange) await this.db.execProtocolRaw(SYNC_MESSAGE);
    });
    if (this.db.isInTransaction()) await this.db.exec('ROLLBACK');
    this.owner = undefined;
    this.midExchange = false;
    this.log(`connection #${handlerId} left holding the session: released`);
    await this.pump();
  }

  private next(): Queued | undefined {
    const i = this.owner === undefined ? 0 : this.queue.findIndex((q) => q.handlerId === this.owner);
    return i < 0 ? undefined : this.queue.splice(i, 1)[0];
  }

  private async pump(): Promise<void> {
    if (this.processing) return;
    this.processing = true;
    try {
      for (let q = this.next(); q; q = this.next()) {
        let bytes = 0;
        try {
          await this.db.runExclusive(() =>
            this.db.execProtocolRawStream(q!.message, {
              onRawData: (data) => {
                bytes += data.length;
                q!.onData(data);
              },
            }),
          );
        } catch (error) {
          // not an SQL error (those come back as ErrorResponse messages): the session is in an unknown state
          this.owner = undefined;
          this.midExchange = false;
          this.log(`connection #${q.handlerId}: ${(error as Error).message}`);
          q.reject(error as Error);
          continue;
        }
        const ends = endsExchange(q.message);
        this.midExchange = !ends;
        this.owner = !ends || this.db.isInTransaction() ? q.handlerId : undefined;
        q.resolve(bytes);
      }
    } finally {
      this.processing = false;
    }
  }
}
