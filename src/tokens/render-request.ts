import { z } from 'zod';
import { badInput } from '../common/errors';
import { isOutputFormat, type OutputFormat } from '../formats/output-formats';

const movieName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, 'a movie name');

/** `movie`: one name, or extension → name with `"*"` as the fallback. */
const movieSpec = z.union([
  movieName,
  z
    .record(z.string(), movieName)
    .refine((m) => Object.keys(m).length > 0, 'the movie map is empty')
    .refine((m) => Object.keys(m).every((k) => k === '*' || isOutputFormat(k)), 'keys must be output extensions (mp4, webm, gif, png, jpg, webp) or "*"'),
]);

/** An upload task, validated and kept for the deliveries that a later release runs. */
const uploadTask = z
  .object({
    type: z.enum(['s3', 'http', 'youtube']),
    /** Which output to upload: an extension of this request. */
    ext: z.string().default('mp4'),
    target: z.string().min(1).max(2048),
    options: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();

export const MAX_PARALLEL = 16;

export const renderRequestSchema = z
  .object({
    movie: movieSpec,
    params: z.record(z.string(), z.unknown()).default({}),
    parallel: z.number().int().min(1).max(MAX_PARALLEL).default(1),
    routingkey: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,31}$/, 'lower-case letters, digits, - and _').default('default'),
    upload: z.array(uploadTask).max(10).default([]),
    async: z.boolean().default(false),
    /** Seconds until the token expires (Impossible-style); default: the project's token TTL (none). */
    ttl: z.number().int().min(60).max(10 * 365 * 24 * 3600).optional(),
    /** Keep this token's outputs whatever the project's output TTL and byte limit. */
    pin: z.boolean().default(false),
  })
  .strict();

export type RenderRequestBody = z.infer<typeof renderRequestSchema>;
export type MovieSpec = z.infer<typeof movieSpec>;

export function parseRenderRequest(body: unknown): RenderRequestBody {
  const parsed = renderRequestSchema.safeParse(body ?? {});
  if (!parsed.success) {
    const details = parsed.error.issues.map((i) => ({
      field: i.path.join('.') || (i.code === 'unrecognized_keys' ? i.keys.join(', ') : '(body)'),
      message: i.code === 'unrecognized_keys' ? `unknown field${i.keys.length > 1 ? 's' : ''}: ${i.keys.join(', ')}` : i.message,
    }));
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
