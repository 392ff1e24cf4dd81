import { SingleBar } from 'cli-progress';
import { createError } from '../errors.js';

/**
 * Text from outside (a file name, a query, an error naming them) made safe for one line of a
 * terminal: control characters are written as JSON escapes (\n, \u001b), so a file name with a
 * line break stays on its line and a query cannot send escape sequences to the terminal.
 */
export function printable(text: string): string {
  return text.replace(/\p{Cc}/gu, (c) => JSON.stringify(c).slice(1, -1));
}

/** A plain-text table: columns padded to their widest cell; numbers right-aligned. */
export function formatTable(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map((c) => (typeof c === 'number' ? formatNumber(c) : c)))];
  const widths = header.map((_, j) => Math.max(...cells.map((r) => String(r[j] ?? '').length)));
  const numeric = header.map((_, j) => rows.length > 0 && rows.every((r) => typeof r[j] === 'number'));
  const line = (r: (string | number)[]) =>
    r.map((c, j) => (numeric[j] ? String(c).padStart(widths[j]!) : String(c).padEnd(widths[j]!))).join('  ').trimEnd();
  return [line(cells[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

export function formatNumber(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  if (Number.isInteger(n)) return String(n);
  return Math.abs(n) >= 100 ? n.toFixed(1) : n.toFixed(Math.abs(n) >= 1 ? 2 : 4);
}

/** A progress bar on stderr (stdout stays clean for --json); quiet when stderr is not a terminal. */
export function progressBar(label: string): { update: (done: number, total: number) => void; stop: () => void } {
  if (!process.stderr.isTTY) {
    let last = 0;
    return {
      update: (done, total) => {
        const now = Date.now();
        if (done === total || now - last > 5000) {
          last = now;
          process.stderr.write(`${label}: ${done}/${total}\n`);
        }
      },
      stop: () => {},
    };
  }
  const bar = new SingleBar({
    format: `${label} [{bar}] {value}/{total} {percentage}% | eta {eta_formatted}`,
    stream: process.stderr,
    hideCursor: true,
  });
  let started = false;
  return {
    update: (done, total) => {
      if (!started) {
        bar.start(total, 0);
        started = true;
      }
      bar.setTotal(total);
      bar.update(done);
    },
    stop: () => started && bar.stop(),
  };
}

export function positiveInt(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) throw createError('BAD_ARGUMENT', flag, `must be a positive integer, got "${value}"`);
    return n;
  };
}

export function nonNegativeInt(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0) throw createError('BAD_ARGUMENT', flag, `must be a whole number ≥ 0, got "${value}"`);
    return n;
  };
}

export function positiveNumber(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n <= 0) throw createError('BAD_ARGUMENT', flag, `must be a positive number, got "${value}"`);
    return n;
  };
}

/** A share or a dropout rate: a number in [0, 1). */
export function fraction(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!(n >= 0 && n < 1)) throw createError('BAD_ARGUMENT', flag, `must be in [0, 1), got "${value}"`);
    return n;
  };
}
