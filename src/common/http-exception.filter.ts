import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import type { Response } from 'express';
import { MontageError } from './errors';

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  413: 'Payload Too Large',
  416: 'Range Not Satisfiable',
  422: 'Unprocessable Entity',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** Every error leaves as JSON `{statusCode, error, message, details?}`; nothing else leaks out. */
@Catch()
export class JsonExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('HTTP');

  catch(exception: unknown, host: ArgumentsHost): void {
    const res = host.switchToHttp().getResponse<Response>();
    let status = 500;
    let message = 'internal error';
    let details: unknown;
    if (exception instanceof MontageError) {
      status = exception.httpStatus;
      message = exception.message;
      if (exception.details.length) details = exception.details;
    } else if (isBodyParserError(exception)) {
      status = exception.status;
      message = exception.type === 'entity.too.large' ? `request body is larger than ${exception.limit} bytes` : 'request body is not valid JSON';
    } else if (exception instanceof HttpException) {
      status = exception.getStatus();
      const body = exception.getResponse();
      message = typeof body === 'string' ? body : String((body as { message?: unknown }).message ?? exception.message);
      // Nest turns body-parser's SyntaxError into a bare 400 with the parser's words.
      if (status === 400 && /JSON|Unexpected (token|end)/.test(message)) message = `request body is not valid JSON (${message})`;
    }
    if (status >= 500) this.logger.error(exception instanceof Error ? (exception.stack ?? exception.message) : String(exception));
    if (res.headersSent) {
      // Mid-stream: the only honest signal left is to cut the connection.
      res.destroy();
      return;
    }
    res.status(status).json({ statusCode: status, error: REASONS[status] ?? 'Error', message, ...(details ? { details } : {}) });
  }
}

function isBodyParserError(e: unknown): e is { status: number; type: string; limit?: number } {
  return typeof e === 'object' && e !== null && typeof (e as { type?: unknown }).type === 'string' && typeof (e as { status?: unknown }).status === 'number';
}
