import * as ipaddr from 'ipaddr.js';
import { badInput } from '../common/errors';

/** Longest media URL accepted; anything longer is more likely an attack than a real asset. */
export const MAX_MEDIA_URL_LENGTH = 2048;

/** How much of a URL an error message quotes, so a hostile URL cannot flood logs or responses. */
const DISPLAY_LENGTH = 200;

/** A URL shortened for error messages. */
export function displayUrl(url: string | URL): string {
  const text = typeof url === 'string' ? url : url.href;
  return text.length > DISPLAY_LENGTH ? `${text.slice(0, DISPLAY_LENGTH)}…` : text;
}

/**
 * Why a parsed URL may not be fetched, or undefined if it may. Shared by the first URL (a user
 * error) and by redirect targets (a media error), which report it differently.
 */
export function mediaUrlProblem(url: URL): string | undefined {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return `only http and https URLs are allowed, not ${url.protocol.replace(/:$/, '')}`;
  }
  if (url.username !== '' || url.password !== '') return 'URLs with credentials (user:password@) are not allowed';
  if (url.href.length > MAX_MEDIA_URL_LENGTH) return `URL is longer than ${MAX_MEDIA_URL_LENGTH} characters`;
  return undefined;
}

/** Parses a user-supplied media URL, throwing `bad_input` for anything that is not plain http(s). */
export function parseMediaUrl(raw: string): URL {
  // Checked before parsing so a huge string is rejected without further work.
  if (raw.length > MAX_MEDIA_URL_LENGTH) {
    throw badInput(`Media URL ${displayUrl(raw)} is longer than ${MAX_MEDIA_URL_LENGTH} characters`);
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw badInput(`Media URL ${displayUrl(raw)} is not a valid absolute URL`);
  }
  const problem = mediaUrlProblem(url);
  if (problem) throw badInput(`Media URL ${displayUrl(raw)} is not allowed: ${problem}`);
  return url;
}

/**
 * True only for globally routable unicast addresses. Everything else (loopback, private,
 * link-local, CGNAT, multicast, reserved, NAT64/6to4/Teredo tunnels, ...) could reach
 * infrastructure the server can see but the user should not. IPv4-mapped IPv6 addresses are
 * judged as the IPv4 address they carry. Unparseable input is not public.
 */
export function isPublicAddress(ip: string): boolean {
  try {
    return ipaddr.process(ip).range() === 'unicast';
  } catch {
    return false;
  }
}
