/**
 * One table of error codes (after orama's errors.ts): the CLI maps codes to exit
 * statuses, tests assert on codes rather than message text.
 */
const MESSAGES = {
  FILE_NOT_FOUND: (path: string) => `file not found: ${path}`,
  BAD_IMAGE: (path: string, why: string) => `cannot read image ${path}: ${why}`,
  IMAGE_TOO_LARGE: (path: string, pixels: number, limit: number) =>
    `image ${path} has ${pixels} pixels, over the limit of ${limit} (raise --max-pixels if it is trusted)`,
  MODEL_NOT_FOUND: (where: string, missing: string) => `model not found at ${where}: missing ${missing}`,
  MODEL_UNSUPPORTED: (where: string, why: string) => `model at ${where} is not supported: ${why}`,
  MODEL_OUTPUT: (model: string, why: string) => `model ${model} gave unexpected output: ${why}`,
  INDEX_CORRUPT: (path: string, why: string) => `index ${path} is corrupt: ${why}`,
  INDEX_FORMAT: (path: string, why: string) => `index ${path}: ${why}`,
  INDEX_LOCKED: (path: string) => `index ${path} is being written by another process; wait for it to finish (or remove ${path}/write.lock if no duo process is running)`,
  INDEX_MODEL_MISMATCH: (path: string, built: string, asked: string) =>
    `index ${path} was built with model ${built}; it cannot be queried with ${asked}`,
  INDEX_DIM_MISMATCH: (what: string, expected: number, got: number) =>
    `${what}: expected vectors of dimension ${expected}, got ${got}`,
  DATASET_FORMAT: (path: string, why: string) => `dataset file ${path}: ${why}`,
  BAD_ARGUMENT: (name: string, why: string) => `${name}: ${why}`,
  QUERY_NOT_UNDERSTOOD: (query: string, unknown: string[]) =>
    `the model knows none of the words of "${query}" (${unknown.join(', ')}): try other words`,
  ABORTED: (what: string) => `${what} was cancelled`,
  ITEM_NOT_FOUND: (id: string, index: string) => `no item ${id} in ${index}`,
} as const;

export type ErrorCode = keyof typeof MESSAGES;

export class DuoError extends Error {
  readonly code: ErrorCode;
  /** the template's arguments (BAD_ARGUMENT's first names the field), for callers that report fields apart from the message */
  readonly args: readonly unknown[];
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; args?: readonly unknown[] }) {
    super(message, options);
    this.name = 'DuoError';
    this.code = code;
    this.args = options?.args ?? [];
  }
}

export function createError<C extends ErrorCode>(
  code: C,
  ...args: Parameters<(typeof MESSAGES)[C]>
): DuoError {
  const template = MESSAGES[code] as (...a: unknown[]) => string;
  return new DuoError(code, template(...args), { args });
}

/** Exit statuses: usage errors 2, bad input data 65 (EX_DATAERR), missing files 66 (EX_NOINPUT), a locked index 75 (EX_TEMPFAIL). */
export function exitCodeFor(error: unknown): number {
  if (!(error instanceof DuoError)) return 1;
  switch (error.code) {
    case 'BAD_ARGUMENT':
      return 2;
    case 'FILE_NOT_FOUND':
    case 'MODEL_NOT_FOUND':
    case 'ITEM_NOT_FOUND':
      return 66;
    case 'INDEX_LOCKED':
      return 75; // EX_TEMPFAIL: try again later
    default:
      return 65;
  }
}
