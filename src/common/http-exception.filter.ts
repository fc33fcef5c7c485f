import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import type { Response } from 'express';
import { randomBytes } from 'node:crypto';
import { type ErrorDetail, MontageError } from './errors';

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  410: 'Gone',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  416: 'Range Not Satisfiable',
  422: 'Unprocessable Entity',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** An error body stays small whatever the request did: 5,000 bad fields are not a 1 MB answer. */
export const MAX_DETAILS = 20;
const MAX_MESSAGE = 1000;
const MAX_DETAIL_TEXT = 300;

const clip = (text: string, max: number) => (text.length > max ? `${text.slice(0, max)}…` : text);

/** At most MAX_DETAILS details, each clipped, and one more that counts the rest. */
export function cappedDetails(details: ErrorDetail[]): ErrorDetail[] {
  const kept = details.slice(0, MAX_DETAILS).map((d) => ({ field: clip(d.field, MAX_DETAIL_TEXT), message: clip(d.message, MAX_DETAIL_TEXT) }));
  if (details.length > MAX_DETAILS) kept.push({ field: '…', message: `and ${details.length - MAX_DETAILS} more` });
  return kept;
}

/** body-parser's errors, each said plainly. */
function bodyParserMessage(e: { type: string; limit?: number; status: number; charset?: string; encoding?: string }): string {
  switch (e.type) {
    case 'entity.too.large':
      return `request body is larger than ${e.limit} bytes`;
    case 'encoding.unsupported':
      return `unsupported Content-Encoding${e.encoding ? ` "${clip(e.encoding, 40)}"` : ''}: send the body uncompressed, or as gzip, deflate or br`;
    case 'charset.unsupported':
      return `unsupported charset${e.charset ? ` "${clip(e.charset, 40)}"` : ''}: send JSON as UTF-8`;
    case 'request.aborted':
      return 'the request body ended early';
    case 'request.size.invalid':
      return 'the request body is shorter or longer than its Content-Length';
    case 'entity.parse.failed':
      return 'request body is not valid JSON';
    default:
      return e.status >= 500 ? 'the request body could not be read' : 'request body is not valid JSON';
  }
}

/** Everything needed to answer: status, public body, and what goes to the log only. */
export function describeError(exception: unknown): { status: number; body: Record<string, unknown>; retryAfterSec?: number; log?: string } {
  let status = 500;
  let message = 'internal error';
  let details: ErrorDetail[] | undefined;
  let retryAfterSec: number | undefined;
  let log: string | undefined;
  if (exception instanceof MontageError) {
    status = exception.httpStatus;
    message = exception.message;
    if (exception.details.length) details = cappedDetails(exception.details);
    retryAfterSec = exception.retryAfterSec;
    if (exception.internal) log = `${exception.message} — ${exception.internal}`;
  } else if (isBodyParserError(exception)) {
    status = exception.status >= 500 ? 400 : exception.status;
    message = bodyParserMessage(exception);
  } else if (exception instanceof HttpException) {
    status = exception.getStatus();
    const body = exception.getResponse();
    message = typeof body === 'string' ? body : String((body as { message?: unknown }).message ?? exception.message);
    // Nest turns body-parser's SyntaxError into a bare 400 with the parser's words.
    if (status === 400 && /JSON|Unexpected (token|end)/.test(message)) message = 'request body is not valid JSON';
  } else {
    log = exception instanceof Error ? (exception.stack ?? exception.message) : String(exception);
  }
  const body: Record<string, unknown> = { statusCode: status, error: REASONS[status] ?? 'Error', message: clip(message, MAX_MESSAGE) };
  if (details) body.details = details;
  if (status >= 500 && log) {
    // The log has the details; the client gets a reference to quote.
    body.ref = randomBytes(4).toString('hex');
    log = `[ref ${body.ref}] ${log}`;
  }
  return { status, body, retryAfterSec, log };
}

/** Writes an error as JSON (also used by middleware that runs before Nest's filters). */
export function sendError(res: Response, exception: unknown, logger?: Logger): void {
  const { status, body, retryAfterSec, log } = describeError(exception);
  if (log && status >= 500) logger?.error(log);
  else if (log) logger?.warn(log);
  if (res.headersSent) {
    // Mid-stream: the only honest signal left is to cut the connection.
    res.destroy();
    return;
  }
  if (retryAfterSec !== undefined) res.setHeader('Retry-After', String(Math.max(1, Math.ceil(retryAfterSec))));
  res.status(status).json(body);
}

/** Every error leaves as JSON `{statusCode, error, message, details?, ref?}`; no tool output, stack or path leaks out. */
@Catch()
export class JsonExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('HTTP');

  catch(exception: unknown, host: ArgumentsHost): void {
    sendError(host.switchToHttp().getResponse<Response>(), exception, this.logger);
  }
}

function isBodyParserError(e: unknown): e is { status: number; type: string; limit?: number } {
  return typeof e === 'object' && e !== null && typeof (e as { type?: unknown }).type === 'string' && typeof (e as { status?: unknown }).status === 'number';
}
