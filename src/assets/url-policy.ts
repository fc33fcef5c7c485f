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

/** IPv6 blocks inside 2000::/3 that are not globally reachable unicast (IANA special-purpose registry). */
const SPECIAL_IPV6: Array<[string, number]> = [
  ['2001::', 23], // IETF protocol assignments: Teredo (embeds IPv4), benchmarking, ORCHID, AMT, …
  ['2001:db8::', 32], // documentation
  ['2002::', 16], // 6to4: embeds an IPv4 address, relays are deprecated (RFC 7526)
  ['2620:4f:8000::', 48], // AS112
  ['3fff::', 20], // documentation (RFC 9637)
  ['5f00::', 16], // SRv6 SIDs (RFC 9602)
];
const GLOBAL_UNICAST = ipaddr.parseCIDR('2000::/3');
const NAT64_WELL_KNOWN = ipaddr.parseCIDR('64:ff9b::/96');
const special = SPECIAL_IPV6.map(([prefix, bits]) => [ipaddr.IPv6.parse(prefix), bits] as [ipaddr.IPv6, number]);

/**
 * `x:…:a.b.c.d` → `x:…:hhhh:hhhh`. ipaddr.js reads `::a.b.c.d` (IPv4-compatible, deprecated)
 * as IPv4-mapped; written in hex, each form is judged as what it is.
 */
function hexTail(ip: string): string {
  const m = /^(.*:)(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (!m) return ip;
  const [a, b, c, d] = m.slice(2).map(Number);
  if ([a, b, c, d].some((n) => n > 255)) return ip;
  return `${m[1]}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
}

function isPublicIPv4(address: ipaddr.IPv4): boolean {
  return address.range() === 'unicast';
}

/**
 * True only for globally routable unicast addresses: anything else (loopback, private,
 * link-local, CGNAT, multicast, reserved, site-local, IPv4-compatible `::a.b.c.d`, local-use
 * NAT64, tunnels) could reach infrastructure the server can see but the user should not.
 *
 * IPv4 must be plain unicast. IPv6 must be in 2000::/3 (global unicast) outside the special
 * blocks above, with two exceptions judged by the IPv4 address they carry: IPv4-mapped
 * (`::ffff:a.b.c.d`, how dual-stack sockets show IPv4) and the well-known NAT64 prefix
 * (`64:ff9b::a.b.c.d`, what DNS64 answers on IPv6-only networks). Unparseable input is not public.
 */
export function isPublicAddress(ip: string): boolean {
  let address: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    address = ipaddr.parse(hexTail(ip.replace(/%.*$/, ''))); // a zone id says which link: never public anyway
  } catch {
    return false;
  }
  if (address.kind() === 'ipv4') return isPublicIPv4(address as ipaddr.IPv4);
  const v6 = address as ipaddr.IPv6;
  if (v6.isIPv4MappedAddress()) return isPublicIPv4(v6.toIPv4Address());
  if (v6.match(NAT64_WELL_KNOWN)) {
    const bytes = v6.toByteArray().slice(12);
    return isPublicIPv4(new ipaddr.IPv4(bytes));
  }
  if (!v6.match(GLOBAL_UNICAST)) return false;
  return !special.some((range) => v6.match(range));
}
