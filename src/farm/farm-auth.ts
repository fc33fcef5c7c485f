import type { Request } from 'express';
import { badInput } from '../common/errors';
import { apiKeyOf } from '../delivery/http-delivery';

/** A request as far as its key goes: only the headers are read. */
type KeyedRequest = Pick<Request, 'headers'>;

/**
 * The API key of a farm or products request, whichever way its client sends it: `api_key` in
 * the JSON body (Rentaflop), `Authorization: Bearer` or `X-Api-Key` (Montage), or
 * `X-AUTH-TOKEN: Bearer <key>` (VNTANA). The body's wins; an `api_key` that is not a string is 400.
 */
export function farmKeyOf(req: KeyedRequest, body?: unknown): string | undefined {
  const fromBody = body && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>).api_key : undefined;
  if (fromBody !== undefined && typeof fromBody !== 'string') throw badInput('api_key must be a string', [{ field: 'api_key', message: 'not a string' }]);
  if (fromBody) return fromBody;
  return apiKeyOf(req as Request) ?? xAuthToken(req);
}

/** VNTANA's header: `X-AUTH-TOKEN: Bearer <key>` (the word Bearer is optional). */
export function xAuthToken(req: KeyedRequest): string | undefined {
  const raw = req.headers['x-auth-token'];
  if (typeof raw !== 'string') return undefined;
  return raw.replace(/^\s*Bearer\s+/i, '').trim() || undefined;
}
