import { z } from 'zod';
import { DestinationType, type Destination } from '../repositories/upload-target/port';

// eslint-disable-next-line no-control-regex -- control characters are what this refuses
const CONTROL = /[\u0000-\u001f\u007f]/;
// eslint-disable-next-line no-control-regex -- the same refusal, as a ZodString that more rules can follow
const NO_CONTROL = /^[^\u0000-\u001f\u007f]*$/;
const text = (max: number) => z.string().min(1).max(max).regex(NO_CONTROL, 'control characters are not allowed');
const freeText = (max: number) => z.string().max(max).refine((s) => !s.includes('\u0000'), 'NUL is not allowed');
const host = text(255).regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/, 'a host name or address, optionally with :port');
/** An absolute http(s) URL without user:password@: destinations, callbacks, batch webhooks. */
export const httpUrl = text(2048).refine((s) => {
  try {
    const u = new URL(s);
    return (u.protocol === 'http:' || u.protocol === 'https:') && !u.username && !u.password;
  } catch {
    return false;
  }
}, 'an absolute http(s) URL without user:password@');
const stringMap = (maxKeys: number) =>
  z
    .record(text(128).regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, - and _'), freeText(1024).refine((s) => !CONTROL.test(s), 'control characters are not allowed'))
    .refine((m) => Object.keys(m).length <= maxKeys, `at most ${maxKeys} entries`);
const headerMap = z
  .record(text(128).regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'an HTTP header name'), freeText(4096).refine((s) => !CONTROL.test(s), 'control characters are not allowed'))
  .refine((m) => Object.keys(m).length <= 32, 'at most 32 headers');

/** A remote name (object key, blob, path): Handlebars allowed; `..` segments and leading `/` are judged after rendering. */
export const remoteName = text(1024);

const s3 = z
  .object({
    type: z.literal(DestinationType.S3),
    bucket: text(63).regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'an S3 bucket name'),
    filename: remoteName,
    aws_access_key_id: text(256),
    aws_secret_access_key: text(512),
    s3host: host.optional(),
    secure: z.boolean().optional(),
    region: text(64).regex(/^[a-z0-9-]+$/, 'a region name').optional(),
    path_style: z.boolean().optional(),
    contenttype: text(255).optional(),
    contentdisposition: text(1024).optional(),
    acl: z.enum(['private', 'public-read', 'public-read-write', 'authenticated-read', 'bucket-owner-read', 'bucket-owner-full-control']).optional(),
    reduced_redundancy: z.boolean().optional(),
    cachecontrol: text(255).optional(),
    metadata: stringMap(32).optional(),
  })
  .strict();

const http = z
  .object({
    type: z.literal(DestinationType.Http),
    url: httpUrl,
    method: z.enum(['PUT', 'POST']).default('PUT'),
    headers: headerMap.optional(),
    field: text(128).optional(),
    filename: remoteName.optional(),
    fields: stringMap(32).optional(),
  })
  .strict();

const azure = z
  .object({
    type: z.literal(DestinationType.Azure),
    sas_url: httpUrl,
    filename: remoteName,
    contenttype: text(255).optional(),
    cachecontrol: text(255).optional(),
    metadata: stringMap(32).optional(),
  })
  .strict();

const port = z.number().int().min(1).max(65535).optional();
const ftp = z
  .object({ type: z.literal(DestinationType.Ftp), host, port, user: text(256), password: freeText(1024), secure: z.boolean().optional(), filename: remoteName })
  .strict();

const sftp = z
  .object({
    type: z.literal(DestinationType.Sftp),
    host,
    port,
    username: text(256),
    password: freeText(1024).optional(),
    private_key: z.string().max(16384).optional(),
    passphrase: freeText(1024).optional(),
    host_fingerprint: text(128).optional(),
    filename: remoteName,
  })
  .strict();

const youtube = z
  .object({
    type: z.literal(DestinationType.YouTube),
    client_id: text(512),
    client_secret: text(512),
    refresh_token: text(2048),
    snippet: z
      .object({ title: text(100), description: freeText(5000).optional(), tags: z.array(text(100)).max(50).optional(), categoryId: text(8).regex(/^\d+$/).optional() })
      .strict(),
    status: z
      .object({ privacyStatus: z.enum(['public', 'unlisted', 'private']).optional(), madeForKids: z.boolean().optional(), publishAt: text(40).optional() })
      .strict()
      .optional(),
  })
  .strict();

const facebook = z
  .object({
    type: z.literal(DestinationType.Facebook),
    page_id: text(64).regex(/^\d+$/, 'a numeric page id'),
    page_token: text(2048),
    title: freeText(255).optional(),
    description: freeText(5000).optional(),
  })
  .strict();

/** Every destination, as a client or a connection gives it (Handlebars still in names). */
export const destinationSchema = z.discriminatedUnion('type', [s3, http, azure, ftp, sftp, youtube, facebook]).superRefine((d, ctx) => {
  if (d.type === DestinationType.Sftp && d.password === undefined && d.private_key === undefined) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['password'], message: 'sftp needs a password or a private_key' });
  }
});
export type DestinationInput = z.infer<typeof destinationSchema>;

/** A connection's name: what a task's `destination.connection` says. */
export const connectionName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, 'letters, digits, - and _ (up to 64)');

/** A task's destination by connection: its name and fields allowed over it (checked against the connection's type later). */
export const connectionRef = z
  .object({ connection: connectionName })
  .catchall(z.unknown())
  .superRefine((d, ctx) => {
    if (JSON.stringify(d).length > 16384) ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'over 16 KiB' });
  });
export type ConnectionRef = z.infer<typeof connectionRef>;

/** `destination` of a task: a connection by name, or a whole destination. Each validated with its own schema, so errors name the field. */
export const taskDestination = z.unknown().transform((value, ctx): DestinationInput | ConnectionRef => {
  const byConnection = typeof value === 'object' && value !== null && 'connection' in value;
  const parsed = byConnection ? connectionRef.safeParse(value) : destinationSchema.safeParse(value);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) ctx.addIssue({ ...issue } as z.IssueData);
    return z.NEVER;
  }
  return parsed.data;
});

/** A connection's fields over which a task sets its own (only those in OVERRIDABLE), validated as a whole destination. */
export function applyOverrides(base: DestinationInput, ref: ConnectionRef): { destination?: DestinationInput; problems: Array<{ field: string; message: string }> } {
  const allowed = OVERRIDABLE[base.type];
  const problems: Array<{ field: string; message: string }> = [];
  const overrides: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(ref)) {
    if (k === 'connection') continue;
    if (!allowed.includes(k)) problems.push({ field: k, message: `cannot be set over a ${base.type} connection (allowed: ${allowed.join(', ')})` });
    else overrides[k] = v;
  }
  if (problems.length) return { problems };
  const merged = destinationSchema.safeParse({ ...base, ...overrides });
  if (!merged.success) return { problems: merged.error.issues.map((i) => ({ field: i.path.join('.'), message: i.message })) };
  return { destination: merged.data, problems: [] };
}

/** Per type, the fields a task may set over a named connection: descriptions of the upload, never where it goes or with what keys. */
export const OVERRIDABLE: Record<DestinationType, string[]> = {
  [DestinationType.S3]: ['filename', 'contenttype', 'contentdisposition', 'acl', 'reduced_redundancy', 'cachecontrol', 'metadata'],
  [DestinationType.Http]: ['filename', 'fields'],
  [DestinationType.Azure]: ['filename', 'contenttype', 'cachecontrol', 'metadata'],
  [DestinationType.Ftp]: ['filename'],
  [DestinationType.Sftp]: ['filename'],
  [DestinationType.YouTube]: ['snippet', 'status'],
  [DestinationType.Facebook]: ['title', 'description'],
};

/** Whether a type's destination needs a remote name (YouTube and Facebook name the video themselves). */
export const NEEDS_FILENAME: Record<DestinationType, boolean> = {
  [DestinationType.S3]: true,
  [DestinationType.Http]: false,
  [DestinationType.Azure]: true,
  [DestinationType.Ftp]: true,
  [DestinationType.Sftp]: true,
  [DestinationType.YouTube]: false,
  [DestinationType.Facebook]: false,
};

/**
 * Where an upload goes, for progress and logs: no keys, passwords, query strings (a SAS or a
 * presigned URL is a credential) or headers.
 */
export function describeDestination(d: Destination): string {
  const path = (u: string) => {
    try {
      const url = new URL(u);
      return `${url.protocol}//${url.host}${url.pathname}`;
    } catch {
      return '(invalid URL)';
    }
  };
  switch (d.type) {
    case DestinationType.S3:
      return `s3://${d.bucket}/${d.filename}${d.s3host ? ` at ${d.s3host}` : ''}`;
    case DestinationType.Http:
      return `${d.method} ${path(d.url)}`;
    case DestinationType.Azure:
      return `${path(d.sas_url).replace(/\/$/, '')}/${d.filename}`;
    case DestinationType.Ftp:
      return `${d.secure ? 'ftps' : 'ftp'}://${d.host}${d.port ? `:${d.port}` : ''}/${d.filename.replace(/^\//, '')}`;
    case DestinationType.Sftp:
      return `sftp://${d.host}${d.port ? `:${d.port}` : ''}/${d.filename.replace(/^\//, '')}`;
    case DestinationType.YouTube:
      return `youtube: "${d.snippet.title}"`;
    case DestinationType.Facebook:
      return `facebook page ${d.page_id}`;
  }
}

/** A rendered remote name that may be used: no `..` or empty segments, no leading `/`, no control characters. */
export function remoteNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'is empty after rendering';
  if (name.length > 1024) return 'is longer than 1024 characters after rendering';
  if (CONTROL.test(name)) return 'contains control characters after rendering';
  if (name.startsWith('/')) return 'must not start with /';
  if (name.split('/').some((s) => s === '..' || s === '.' || s === '')) return 'must not contain empty, . or .. path segments';
  return undefined;
}
