import type { Command } from 'commander';
import { badInput, type ErrorDetail, MontageError, type MontageErrorKind, unavailable } from '../common/errors';

/** How long one API call may take. */
const REQUEST_TIMEOUT_MS = 30_000;

/** HTTP status → the error kind the CLI exits with (2: the user can fix it; 1: the service or the network). */
function kindOf(status: number): MontageErrorKind {
  const kinds: Record<number, MontageErrorKind> = {
    400: 'bad_input',
    401: 'unauthorized',
    403: 'forbidden',
    404: 'not_found',
    410: 'gone',
    413: 'too_large',
    415: 'unsupported_media_type',
    422: 'unusable_media',
    429: 'too_many',
  };
  if (kinds[status]) return kinds[status];
  return status >= 500 ? 'unavailable' : 'bad_input';
}

/**
 * A running Montage API over HTTP, for CLI commands that must not open the service's
 * embedded store (only one process may): webhooks, connections, … An HTTP error becomes a
 * MontageError carrying the server's message and details (exit 2 for 4xx, 1 for 5xx and an
 * unreachable API).
 */
export class ApiClient {
  readonly baseUrl: string;

  constructor(
    baseUrl: string,
    private readonly apiKey?: string,
  ) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
  }

  async request<T = unknown>(method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.apiKey) headers.authorization = `Bearer ${this.apiKey}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(`${this.baseUrl}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), redirect: 'manual', signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const why = (err as Error).name === 'TimeoutError' ? `no answer within ${REQUEST_TIMEOUT_MS / 1000} s` : (cause?.code ?? cause?.message ?? (err as Error).message);
      throw unavailable(`cannot reach the Montage API at ${this.baseUrl} (${why}); is it running? (--api or MONTAGE_API_URL)`);
    }
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (res.ok) return parsed as T;
    const answer = (parsed ?? {}) as { message?: unknown; details?: unknown };
    const message = typeof answer.message === 'string' ? answer.message : `the API answered ${res.status} ${res.statusText}`.trim();
    const details = Array.isArray(answer.details) ? (answer.details as ErrorDetail[]).filter((d) => d && typeof d.field === 'string' && typeof d.message === 'string') : [];
    throw new MontageError(kindOf(res.status), message, details);
  }
}

export interface ApiOptions {
  api?: string;
  key?: string;
}

/** Adds `--api <url>` and `--key <api key>` to a command. */
export function withApiOptions(command: Command): Command {
  return command
    .option('--api <url>', 'the Montage API (default: MONTAGE_API_URL or http://localhost:8080)')
    .option('--key <api key>', "the project's API key (default: MONTAGE_API_KEY)");
}

/** The client for `--api`/`--key`, or MONTAGE_API_URL/MONTAGE_API_KEY, or http://localhost:8080. */
export function apiClient(options: ApiOptions, env: NodeJS.ProcessEnv = process.env): ApiClient {
  const base = options.api || env.MONTAGE_API_URL || 'http://localhost:8080';
  let url: URL | undefined;
  try {
    url = new URL(base);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw badInput(`the API URL "${base.slice(0, 200)}" is not an http(s) URL`, [{ field: '--api', message: 'not an http(s) URL' }]);
  }
  return new ApiClient(base, options.key || env.MONTAGE_API_KEY || undefined);
}
