import { z } from 'zod';
import { badInput } from '../common/errors';
import { isOutputFormat, RENDERED_FORMATS, type OutputFormat } from '../formats/output-formats';
import { httpUrl, taskDestination } from '../uploads/destinations';

const movieName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, 'a movie name');

/** `movie`: one name, or extension → name with `"*"` as the fallback. */
const movieSpec = z.union([
  movieName,
  z
    .record(z.string(), movieName)
    .refine((m) => Object.keys(m).length > 0, 'the movie map is empty')
    .refine((m) => Object.keys(m).every((k) => k === '*' || isOutputFormat(k)), 'keys must be output extensions (mp4, webm, gif, png, jpg, webp, vtt) or "*"'),
]);

/** An upload task (Impossible's upload task definition): which output, when, where, and whom to tell. */
const uploadTask = z
  .object({
    /** Which output to upload: an extension of this request. */
    extension: z.enum(RENDERED_FORMATS).default('mp4'),
    /** false: uploaded as soon as the first viewer's render is stored; true: rendered and uploaded in the background now. */
    async: z.boolean().default(false),
    /** Called (GET, `?msg=`) when the upload is done, or failed for good. */
    onsuccess: httpUrl.optional(),
    onerror: httpUrl.optional(),
    destination: taskDestination,
  })
  .strict();
export type UploadTaskInput = z.infer<typeof uploadTask>;

export const MAX_UPLOAD_TASKS = 10;
export const MAX_METADATA_BYTES = 8192;

export const MAX_PARALLEL = 16;

export const renderRequestSchema = z
  .object({
    movie: movieSpec,
    params: z.record(z.string(), z.unknown()).default({}),
    parallel: z.number().int().min(1).max(MAX_PARALLEL).default(1),
    routingkey: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,31}$/, 'lower-case letters, digits, - and _').default('default'),
    // One task or a list: a lone task is read as a list of one, so errors name `upload.0.<field>`.
    upload: z
      .preprocess((u) => (u !== null && typeof u === 'object' && !Array.isArray(u) ? [u] : u), z.array(uploadTask).max(MAX_UPLOAD_TASKS, `at most ${MAX_UPLOAD_TASKS} upload tasks`))
      .default([]),
    /** The caller's own data, returned in every webhook about this token. */
    metadata: z
      .record(z.string(), z.unknown())
      .refine((m) => JSON.stringify(m).length <= MAX_METADATA_BYTES, `at most ${MAX_METADATA_BYTES} bytes of JSON`)
      .optional(),
    async: z.boolean().default(false),
    /** Seconds until the token expires (Impossible-style); default: the project's token TTL (none). */
    ttl: z.number().int().min(60).max(10 * 365 * 24 * 3600).optional(),
    /** Keep this token's outputs whatever the project's output TTL and byte limit. */
    pin: z.boolean().default(false),
  })
  .strict();

export type RenderRequestBody = z.infer<typeof renderRequestSchema>;
export type MovieSpec = z.infer<typeof movieSpec>;

/** Zod's issues as error details: each bad field by its path, unknown fields by name. */
export function requestIssueDetails(issues: z.ZodIssue[]): Array<{ field: string; message: string }> {
  return issues.map((i) => ({
    field: i.path.join('.') || (i.code === 'unrecognized_keys' ? i.keys.join(', ') : '(body)'),
    message: i.code === 'unrecognized_keys' ? `unknown field${i.keys.length > 1 ? 's' : ''}: ${i.keys.join(', ')}` : i.message,
  }));
}

export function parseRenderRequest(body: unknown): RenderRequestBody {
  const parsed = renderRequestSchema.safeParse(body ?? {});
  if (!parsed.success) {
    const details = requestIssueDetails(parsed.error.issues);
    throw badInput(`invalid render request: ${details.map((d) => `${d.field}: ${d.message}`).join('; ')}`, details);
  }
  return parsed.data;
}

/** The movie a request renders for an extension; undefined when the map does not cover it. */
export function movieFor(spec: MovieSpec, ext: OutputFormat): string | undefined {
  if (typeof spec === 'string') return spec;
  return spec[ext] ?? spec['*'];
}

/** Extensions a token can be fetched as: every output format for a single movie or a "*" map. */
export function coveredExtensions(spec: MovieSpec): OutputFormat[] {
  if (typeof spec === 'string' || spec['*']) return ['mp4', 'webm', 'gif', 'png', 'jpg', 'webp'];
  return Object.keys(spec).filter(isOutputFormat);
}
