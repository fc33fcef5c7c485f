/**
 * Errors a user can act on. Each kind maps to one HTTP status in the API and one CLI exit
 * code, so the place that detects a problem never has to know who asked.
 */
export type MontageErrorKind =
  | 'bad_input' // 400 / exit 2: params, request fields, template syntax
  | 'unauthorized' // 401 / exit 2: no API key, or one that no project has
  | 'forbidden' // 403 / exit 2: a valid key of another project; a bad URL signature
  | 'not_found' // 404 / exit 2: project, movie, token, asset
  | 'too_large' // 413 / exit 2: body, download, duration × resolution
  | 'too_many' // 429: more distinct outputs from one token than allowed; a rate limit or quota
  | 'unusable_media' // 422 / exit 2: a URL that is unreachable, refused, or not media
  | 'gone' // 410 / exit 2: a token that expired
  | 'conflict' // 409 / exit 2: the thing is not in a state that allows this (a retry with no failed frame)
  | 'unsupported_media_type' // 415 / exit 2: a body that is not JSON, or an encoding we cannot read
  | 'render_failed' // 500 / exit 1: ffmpeg or sharp failed on valid input
  | 'unavailable'; // 503 / exit 1: a dependency (Redis, the store, the storage) is away for now

export interface ErrorDetail {
  /** What is wrong: a variable name, a request field, or `file:line`. */
  field: string;
  message: string;
}

export interface MontageErrorOptions {
  /** Seconds after which a retry may succeed (429, 503): sent as `Retry-After`. */
  retryAfterSec?: number;
  /**
   * What only the operator should see (a tool's output, a path): logged where the error is
   * reported, never sent to a client and never stored where a client can read it.
   */
  internal?: string;
  /** Another attempt would fail the same way (a misconfigured node): not retried. */
  permanent?: boolean;
}

export class MontageError extends Error {
  readonly retryAfterSec?: number;
  readonly internal?: string;
  readonly permanent?: boolean;

  constructor(
    readonly kind: MontageErrorKind,
    message: string,
    readonly details: ErrorDetail[] = [],
    options: MontageErrorOptions = {},
  ) {
    super(message);
    this.name = 'MontageError';
    this.retryAfterSec = options.retryAfterSec;
    this.internal = options.internal;
    this.permanent = options.permanent;
  }

  get httpStatus(): number {
    return {
      bad_input: 400,
      unauthorized: 401,
      forbidden: 403,
      not_found: 404,
      too_large: 413,
      unusable_media: 422,
      gone: 410,
      conflict: 409,
      unsupported_media_type: 415,
      too_many: 429,
      render_failed: 500,
      unavailable: 503,
    }[this.kind];
  }

  /** CLI exit code: 2 for anything the user can fix in their input, 1 for render failures and outages. */
  get exitCode(): number {
    return this.kind === 'render_failed' || this.kind === 'unavailable' ? 1 : 2;
  }
}

export const badInput = (message: string, details: ErrorDetail[] = []) => new MontageError('bad_input', message, details);
export const unauthorized = (message: string) => new MontageError('unauthorized', message);
export const forbidden = (message: string) => new MontageError('forbidden', message);
export const notFound = (message: string, details: ErrorDetail[] = []) => new MontageError('not_found', message, details);
export const unusableMedia = (message: string, details: ErrorDetail[] = [], options: MontageErrorOptions = {}) =>
  new MontageError('unusable_media', message, details, options);
export const conflict = (message: string, details: ErrorDetail[] = []) => new MontageError('conflict', message, details);
export const tooLarge = (message: string, details: ErrorDetail[] = []) => new MontageError('too_large', message, details);
export const renderFailed = (message: string, details: ErrorDetail[] = [], options: MontageErrorOptions = {}) =>
  new MontageError('render_failed', message, details, options);
export const unavailable = (message: string, retryAfterSec = 5, internal?: string) => new MontageError('unavailable', message, [], { retryAfterSec, internal });
export const tooMany = (message: string, retryAfterSec: number, details: ErrorDetail[] = []) =>
  new MontageError('too_many', message, details, { retryAfterSec });

/**
 * A failure that another attempt would only repeat: the input is wrong (bad params, unusable
 * media, too large), not the machine. Jobs that fail so are not retried.
 */
export function isPermanent(err: unknown): boolean {
  return err instanceof MontageError && (!!err.permanent || (err.httpStatus < 500 && err.kind !== 'too_many'));
}
