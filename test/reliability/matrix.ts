/**
 * The bad-input matrix as the test run observed it (issue [8]): one row per input, what the
 * command line did and what the HTTP API answered, written to docs/bad-input.md by the run
 * itself, atomically, and only when every case of the run passed.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import sharp from 'sharp';
import { writeFileAtomic } from '../../src/util/atomic-write.js';
import { packageRoot } from '../../src/util/package-root.js';

export interface Run {
  /** the exit status; null when the command was killed (it ran past the time limit) */
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

/** the user the command runs as where file permissions must apply (root reads every file) */
export const NOBODY = 65534;
export const asRoot = process.getuid?.() === 0;

/**
 * Runs the compiled `duo` (as test/helpers.ts runDuo does), killed after `timeoutMs` so a hang is
 * a failed case rather than a stuck suite; `printf` puts a query made by printf(1) last on the
 * command line, raw bytes included (invalid UTF-8 cannot pass through a JavaScript string).
 */
export function duo(args: string[], o: { timeoutMs?: number; unprivileged?: boolean; printf?: string } = {}): Promise<Run> {
  const bin = join(packageRoot(), 'bin', 'duo.js');
  const [file, argv] = o.printf === undefined ? [process.execPath, [bin, ...args]] : ['/bin/sh', ['-c', 'q=$(printf "$0"); exec "$@" "$q"', o.printf, process.execPath, bin, ...args]];
  const user = o.unprivileged && asRoot ? { uid: NOBODY, gid: NOBODY } : {};
  return new Promise((resolve) => {
    execFile(file, argv, { cwd: packageRoot(), timeout: o.timeoutMs ?? 20_000, maxBuffer: 16 << 20, ...user }, (error, stdout, stderr) => {
      const e = error as (Error & { code?: number | string; signal?: string | null; killed?: boolean }) | null;
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : null) : 0, signal: e?.signal ?? null, stdout, stderr });
    });
  });
}

/** Runs jobs at most `width` at a time, results in order (the CLI's start-up is most of each run). */
export async function pool<T, R>(items: T[], width: number, job: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await job(items[i]!);
      }
    }),
  );
  return out;
}

interface Row {
  section: string;
  input: string;
  cli: string[];
  api: string[];
}

export class Matrix {
  private readonly rows = new Map<string, Row>();
  private readonly done = new Set<string>();
  private readonly notes: string[] = [];

  /** `strip`: text (the temporary folder) replaced by `…` in what the cells quote */
  constructor(private readonly strip: string[] = []) {}

  /** Declares a row, so the table keeps the order of declaration whatever order the cells come in. */
  row(section: string, input: string): void {
    if (!this.rows.has(`${section}\u0000${input}`)) this.rows.set(`${section}\u0000${input}`, { section, input, cli: [], api: [] });
  }

  cli(section: string, input: string, text: string): void {
    this.row(section, input);
    this.rows.get(`${section}\u0000${input}`)!.cli.push(text);
  }

  api(section: string, input: string, text: string): void {
    this.row(section, input);
    this.rows.get(`${section}\u0000${input}`)!.api.push(text);
  }

  /** A line for the header (a case left out, and why). */
  note(text: string): void {
    this.notes.push(text);
  }

  /** A part of the run finished with every assertion holding. */
  passed(part: string): void {
    this.done.add(part);
  }

  complete(parts: string[]): boolean {
    return parts.every((p) => this.done.has(p));
  }

  /** One line of what a run printed: its exit status and the first line of stderr (or a summary of stdout). */
  describeRun(r: Run, success?: string): string {
    if (r.code === null) return `killed (${r.signal ?? 'time-out'})`;
    const said = r.code === 0 ? (success ?? 'answered') : (r.stderr.trim().split('\n')[0] ?? '');
    return `exit ${r.code}: ${this.shorten(said)}`;
  }

  /** Program output for a cell: the temporary folder left out, cut to `max`, with no backtick or tag to upset the markdown. */
  shorten(text: string, max = 170): string {
    let t = text;
    for (const s of this.strip) t = t.split(s).join('…');
    if (t.length > max) t = `${t.slice(0, max - 1)}…`;
    return t.replace(/`/g, "'").replace(/</g, '&lt;').replace(/>/g, '&gt;');
  }

  markdown(): string {
    const cell = (parts: string[]) => (parts.length === 0 ? '—' : parts.join('; ')).replace(/\|/g, '\\|').replace(/\p{Cc}/gu, (c) => JSON.stringify(c).slice(1, -1));
    const lines = [
      '# Bad input: what the command line and the API do with it',
      '',
      'Written by the test run itself, `node --import tsx --test test/reliability/bad-input.test.ts`',
      '(issue [8]), from what it observed; the table is rewritten only when every case passed. Every',
      'input is generated by the test (sharp and byte edits, never a dataset copy). **CLI**: the',
      'compiled `duo` — `duo index` over one folder holding every file below next to good ones',
      '(`--json` report), `duo search` (`--image` for files), `duo serve` for its config section;',
      'exit status and the first line of stderr. **API**: `duo serve`\'s app in-process (Fastify',
      '`inject`, default limits) — status and error code; for a bad index, what `startServer` does.',
      `Exit statuses: 2 usage, 65 bad data, 66 missing input (src/errors.ts). libvips ${sharp.versions.vips}` +
        (asRoot && this.notes.length === 0 ? '; the run was root, so the permission cases ran the CLI as uid 65534.' : '.'),
      ...this.notes,
      '',
      '| input | CLI | API |',
      '| --- | --- | --- |',
    ];
    let section = '';
    for (const r of this.rows.values()) {
      if (r.section !== section) {
        section = r.section;
        lines.push(`| **${section}** | | |`);
      }
      lines.push(`| ${cell([r.input])} | ${cell(r.cli)} | ${cell(r.api)} |`);
    }
    return `${lines.join('\n')}\n`;
  }

  async write(path: string): Promise<void> {
    await writeFileAtomic(path, this.markdown());
  }
}
