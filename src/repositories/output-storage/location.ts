import * as path from 'node:path';
import { badInput } from '../../common/errors';

/** Where outputs and segments are kept, parsed from STORAGE_URL. */
export type StorageLocation =
  | { kind: 'local'; dir: string }
  | {
      kind: 's3';
      bucket: string;
      /** Key prefix, empty or ending in `/`. */
      prefix: string;
      /** An S3-compatible server (`http://127.0.0.1:7480`); unset: AWS. */
      endpoint?: string;
      region: string;
      forcePathStyle: boolean;
      /** From the URL's user info; unset: the AWS SDK's default chain (AWS_ACCESS_KEY_ID, profiles, roles). */
      credentials?: { accessKeyId: string; secretAccessKey: string };
    };

const S3_OPTIONS = new Set(['endpoint', 'region', 'path_style']);

function invalid(message: string): never {
  throw badInput(`STORAGE_URL: ${message}`, [{ field: 'STORAGE_URL', message }]);
}

/**
 * `STORAGE_URL` → a storage location.
 * - unset: a local directory, the data dir (one machine);
 * - `file:///shared/montage` or an absolute path: a local directory (a mount every node shares);
 * - `s3://[KEY:SECRET@]bucket[/prefix]?endpoint=http://host:port&region=…&path_style=1`.
 */
export function parseStorageUrl(raw: string | undefined, dataDir: string, env: NodeJS.ProcessEnv = {}): StorageLocation {
  const value = raw?.trim();
  if (!value) return { kind: 'local', dir: dataDir };
  if (path.isAbsolute(value)) return { kind: 'local', dir: path.normalize(value) };
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return invalid(`"${redact(value)}" is not a URL (file:///dir or s3://bucket/prefix)`);
  }
  if (url.protocol === 'file:') {
    if (url.host) invalid('a file URL names a local directory: file:///path, without a host');
    return { kind: 'local', dir: path.normalize(decodeURIComponent(url.pathname)) };
  }
  if (url.protocol !== 's3:') return invalid(`unsupported scheme "${url.protocol.replace(/:$/, '')}" (file or s3)`);

  const bucket = url.hostname;
  // S3 bucket naming rules: 3–63 lower-case letters, digits, dots and hyphens.
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) invalid(`"${bucket}" is not a bucket name`);
  if (url.port) invalid('the server goes in ?endpoint=, not in the host part (s3://bucket/prefix?endpoint=http://host:port)');
  for (const name of url.searchParams.keys()) {
    if (!S3_OPTIONS.has(name)) invalid(`unknown option "${name}" (endpoint, region, path_style)`);
  }
  const prefix = decodeURIComponent(url.pathname).replace(/^\/+/, '').replace(/\/*$/, '/').replace(/^\/$/, '');
  if (prefix.split('/').some((part) => part === '.' || part === '..')) invalid('the prefix may not contain . or .. parts');

  const endpoint = url.searchParams.get('endpoint') || undefined;
  if (endpoint) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(endpoint);
    } catch {
      parsed = undefined;
    }
    if (!parsed || !['http:', 'https:'].includes(parsed.protocol)) invalid(`endpoint "${endpoint}" is not an http(s) URL`);
  }
  const pathStyle = url.searchParams.get('path_style');
  if (pathStyle !== null && !['0', '1', 'true', 'false'].includes(pathStyle)) invalid('path_style must be 1 or 0');

  const user = decodeURIComponent(url.username);
  const secret = decodeURIComponent(url.password);
  if ((user && !secret) || (!user && secret)) invalid('credentials need both an access key and a secret (s3://KEY:SECRET@bucket)');

  return {
    kind: 's3',
    bucket,
    prefix,
    endpoint,
    region: url.searchParams.get('region') || env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1',
    // S3-compatible servers (radosgw, MinIO) address buckets by path; AWS by host name.
    forcePathStyle: pathStyle === null ? !!endpoint : pathStyle === '1' || pathStyle === 'true',
    credentials: user ? { accessKeyId: user, secretAccessKey: secret } : undefined,
  };
}

/** The location for logs and /health: never the secret. */
export function describeStorage(location: StorageLocation): string {
  if (location.kind === 'local') return `local ${location.dir}`;
  return `s3://${location.bucket}/${location.prefix}${location.endpoint ? ` at ${location.endpoint}` : ''}`;
}

/** Everything between `//` and the last `@` (a secret may hold `/`, `:` or `@`). */
function redact(value: string): string {
  return value.replace(/\/\/.*@/, '//***@');
}
