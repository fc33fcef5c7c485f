import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Signed direct-render URLs: `GET /v1/render/<project>/<movie>.<ext>?name=Alex&sig=…`.
 * The signature is HMAC-SHA256 of the path and the query parameters sorted by name (sig
 * excluded), keyed with the project's signing secret, in lower-case hex.
 */
export function canonicalRequest(path: string, query: Record<string, string>): string {
  const pairs = Object.entries(query)
    .filter(([k]) => k !== 'sig')
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
  return `${path}?${pairs.join('&')}`;
}

export function sign(secret: string, path: string, query: Record<string, string>): string {
  return createHmac('sha256', secret).update(canonicalRequest(path, query)).digest('hex');
}

export function verify(secret: string, path: string, query: Record<string, string>, signature: string | undefined): boolean {
  if (!signature || !/^[0-9a-f]{64}$/.test(signature)) return false;
  const expected = Buffer.from(sign(secret, path, query), 'hex');
  return timingSafeEqual(expected, Buffer.from(signature, 'hex'));
}

/** A full signed URL, for `montage sign-url`. */
export function signedUrl(base: string, project: string, movie: string, ext: string, params: Record<string, string>, secret: string): string {
  const path = `/v1/render/${encodeURIComponent(project)}/${encodeURIComponent(movie)}.${ext}`;
  const query = { ...params };
  const sig = sign(secret, path, query);
  const search = new URLSearchParams({ ...query, sig });
  return `${base.replace(/\/+$/, '')}${path}?${search.toString()}`;
}
