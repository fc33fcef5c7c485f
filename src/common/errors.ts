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
  | 'too_many' // 429: more distinct outputs from one token than allowed
  | 'unusable_media' // 422 / exit 2: a URL that is unreachable, refused, or not media
  | 'render_failed'; // 500 / exit 1: ffmpeg or sharp failed on valid input

export interface ErrorDetail {
  /** What is wrong: a variable name, a request field, or `file:line`. */
  field: string;
  message: string;
}

export class MontageError extends Error {
  constructor(
    readonly kind: MontageErrorKind,
    message: string,
    readonly details: ErrorDetail[] = [],
  ) {
    super(message);
    this.name = 'MontageError';
  }

  get httpStatus(): number {
    return {
      bad_input: 400,
      unauthorized: 401,
      forbidden: 403,
      not_found: 404,
      too_large: 413,
      unusable_media: 422,
      too_many: 429,
      render_failed: 500,
    }[this.kind];
  }

  /** CLI exit code: 2 for anything the user can fix in their input, 1 for render failures. */
  get exitCode(): number {
    return this.kind === 'render_failed' ? 1 : 2;
  }
}

export const badInput = (message: string, details: ErrorDetail[] = []) => new MontageError('bad_input', message, details);
export const unauthorized = (message: string) => new MontageError('unauthorized', message);
export const forbidden = (message: string) => new MontageError('forbidden', message);
export const notFound = (message: string, details: ErrorDetail[] = []) => new MontageError('not_found', message, details);
export const unusableMedia = (message: string, details: ErrorDetail[] = []) =>
  new MontageError('unusable_media', message, details);
export const tooLarge = (message: string, details: ErrorDetail[] = []) => new MontageError('too_large', message, details);
export const renderFailed = (message: string, details: ErrorDetail[] = []) =>
  new MontageError('render_failed', message, details);
