import { z } from 'zod';
import { badInput, type ErrorDetail } from '../common/errors';
import { RENDERED_FORMATS } from '../formats/output-formats';
import { MAX_METADATA_BYTES, MAX_PARALLEL, requestIssueDetails } from '../tokens/render-request';
import { httpUrl } from '../uploads/destinations';

/** An item: ImageFactory's `{key, …inputs}`, or `{key, params: {…}}`. */
const item = z
  // eslint-disable-next-line no-control-regex -- control characters are what this refuses
  .object({ key: z.string().min(1).max(256).regex(/^[^\u0000-\u001f\u007f]*$/, 'control characters are not allowed'), params: z.record(z.string(), z.unknown()).optional() })
  .catchall(z.unknown())
  .transform(({ key, params, ...rest }) => ({ key, params: params ?? rest, mixed: params !== undefined && Object.keys(rest).length > 0 }));

export const batchRequestSchema = z
  .object({
    movie: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, 'a movie name'),
    requests: z.array(z.unknown()).min(1, 'at least one request'),
    formats: z.array(z.enum(RENDERED_FORMATS)).min(1).max(RENDERED_FORMATS.length).default(['mp4']),
    webhook_url: httpUrl.optional(),
    metadata: z
      .record(z.string(), z.unknown())
      .refine((m) => JSON.stringify(m).length <= MAX_METADATA_BYTES, `at most ${MAX_METADATA_BYTES} bytes of JSON`)
      .optional(),
    parallel: z.number().int().min(1).max(MAX_PARALLEL).default(1),
    routingkey: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,31}$/, 'lower-case letters, digits, - and _').default('default'),
  })
  .strict();

export interface BatchRequest {
  movie: string;
  items: Array<{ key: string; params: Record<string, unknown> }>;
  formats: Array<(typeof RENDERED_FORMATS)[number]>;
  webhook_url?: string;
  metadata?: Record<string, unknown>;
  parallel: number;
  routingkey: string;
}

/**
 * The request as a whole: refused (400, naming the items) only when it cannot start — a bad
 * field, an item without a usable key, keys used twice. Items whose params are wrong fail
 * alone, later, with their reason.
 */
export function parseBatchRequest(body: unknown, maxItems: number): BatchRequest {
  const parsed = batchRequestSchema.safeParse(body ?? {});
  if (!parsed.success) {
    const details = requestIssueDetails(parsed.error.issues);
    throw badInput(`invalid batch request: ${details.map((d) => `${d.field}: ${d.message}`).join('; ')}`, details);
  }
  const { requests, ...rest } = parsed.data;
  if (requests.length > maxItems) throw badInput(`a batch has at most ${maxItems} requests; this one has ${requests.length}`, [{ field: 'requests', message: `over ${maxItems}` }]);
  const problems: ErrorDetail[] = [];
  const items: BatchRequest['items'] = [];
  const seen = new Map<string, number>();
  requests.forEach((raw, index) => {
    const one = item.safeParse(raw);
    if (!one.success) {
      problems.push(...one.error.issues.map((i) => ({ field: `requests.${index}${i.path.length ? `.${i.path.join('.')}` : ''}`, message: i.message })));
      return;
    }
    if (one.data.mixed) problems.push({ field: `requests.${index}`, message: 'give the values either in "params" or beside "key", not both' });
    const earlier = seen.get(one.data.key);
    if (earlier !== undefined) problems.push({ field: `requests.${index}.key`, message: `"${one.data.key.slice(0, 64)}" is also the key of requests.${earlier}: keys tell results apart` });
    seen.set(one.data.key, index);
    items.push({ key: one.data.key, params: one.data.params });
  });
  if (problems.length) {
    const shown = problems.slice(0, 20);
    throw badInput(`the batch cannot start: ${shown.map((p) => `${p.field}: ${p.message}`).join('; ')}${problems.length > shown.length ? `; and ${problems.length - shown.length} more` : ''}`, problems.slice(0, 100));
  }
  return { ...rest, items };
}
