import { createHash, createHmac } from 'node:crypto';

/**
 * AWS Signature Version 4 for the two things the SDK here cannot make (no
 * s3-request-presigner, no presigned-post): a browser-style POST policy and a query-signed GET.
 * Pure: the clock and the credentials come in; unit tests check AWS's published examples.
 */
export interface SigV4Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data, 'utf8').digest();
const sha256Hex = (data: string) => createHash('sha256').update(data, 'utf8').digest('hex');

/** `20130524T000000Z` */
export function amzDate(at: Date): string {
  return at.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

export function signingKey(secretAccessKey: string, day: string, region: string, service: string): Buffer {
  return hmac(hmac(hmac(hmac(`AWS4${secretAccessKey}`, day), region), service), 'aws4_request');
}

/** RFC 3986 encoding as SigV4 wants it (`encodeURIComponent` leaves `!'()*` alone). */
export function uriEncode(value: string, keepSlash = false): string {
  const encoded = encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return keepSlash ? encoded.replace(/%2F/g, '/') : encoded;
}

export interface PostPolicyInput {
  bucket: string;
  key: string;
  maxBytes: number;
  expiresSec: number;
  region: string;
  credentials: SigV4Credentials;
  contentType?: string;
  now?: Date;
}

/** The form fields of a POST upload: the client sends them, then `file` last. */
export function postPolicyFields(input: PostPolicyInput): Record<string, string> {
  const now = input.now ?? new Date();
  const date = amzDate(now);
  const credential = `${input.credentials.accessKeyId}/${date.slice(0, 8)}/${input.region}/s3/aws4_request`;
  const fields: Record<string, string> = {
    key: input.key,
    ...(input.contentType ? { 'Content-Type': input.contentType } : {}),
    'x-amz-algorithm': 'AWS4-HMAC-SHA256',
    'x-amz-credential': credential,
    'x-amz-date': date,
    ...(input.credentials.sessionToken ? { 'x-amz-security-token': input.credentials.sessionToken } : {}),
  };
  const conditions: unknown[] = [{ bucket: input.bucket }, ['content-length-range', 0, input.maxBytes]];
  for (const [name, value] of Object.entries(fields)) conditions.push({ [name]: value });
  const policy = Buffer.from(JSON.stringify({ expiration: new Date(now.getTime() + input.expiresSec * 1000).toISOString(), conditions })).toString('base64');
  return { ...fields, policy, 'x-amz-signature': signPolicy(policy, input.credentials.secretAccessKey, date.slice(0, 8), input.region) };
}

/** A POST policy's signature: the base64 policy is the string to sign. */
export function signPolicy(policyBase64: string, secretAccessKey: string, day: string, region: string): string {
  return hmac(signingKey(secretAccessKey, day, region, 's3'), policyBase64).toString('hex');
}

export interface PresignGetInput {
  /** `http://127.0.0.1:7480` or `https://examplebucket.s3.amazonaws.com`: scheme and host. */
  origin: string;
  /** The object's path on that host, unencoded (`/bucket/key` path-style, `/key` virtual-hosted). */
  path: string;
  region: string;
  credentials: SigV4Credentials;
  expiresSec: number;
  /** Extra query parameters (`response-content-disposition`, …), signed with the rest. */
  query?: Record<string, string>;
  now?: Date;
}

/** A GET URL signed in its query string (UNSIGNED-PAYLOAD, only `host` signed). */
export function presignGetUrl(input: PresignGetInput): string {
  const now = input.now ?? new Date();
  const date = amzDate(now);
  const scope = `${date.slice(0, 8)}/${input.region}/s3/aws4_request`;
  const host = new URL(input.origin).host;
  const query: Record<string, string> = {
    ...input.query,
    'X-Amz-Algorithm': 'AWS4-HMAC-SHA256',
    'X-Amz-Credential': `${input.credentials.accessKeyId}/${scope}`,
    'X-Amz-Date': date,
    'X-Amz-Expires': String(Math.max(1, Math.min(604_800, Math.floor(input.expiresSec)))),
    'X-Amz-SignedHeaders': 'host',
    ...(input.credentials.sessionToken ? { 'X-Amz-Security-Token': input.credentials.sessionToken } : {}),
  };
  const canonicalQuery = Object.keys(query)
    .sort()
    .map((k) => `${uriEncode(k)}=${uriEncode(query[k])}`)
    .join('&');
  const canonicalPath = uriEncode(input.path, true);
  const canonicalRequest = ['GET', canonicalPath, canonicalQuery, `host:${host}`, '', 'host', 'UNSIGNED-PAYLOAD'].join('\n');
  const stringToSign = ['AWS4-HMAC-SHA256', date, scope, sha256Hex(canonicalRequest)].join('\n');
  const signature = hmac(signingKey(input.credentials.secretAccessKey, date.slice(0, 8), input.region, 's3'), stringToSign).toString('hex');
  return `${input.origin.replace(/\/+$/, '')}${canonicalPath}?${canonicalQuery}&X-Amz-Signature=${signature}`;
}
