import { Inject, Injectable } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { badInput, notFound } from '../common/errors';
import { unsafeCharacter } from '../common/json-policy';
import { MONTAGE_CONFIG, type MontageConfig } from '../config/config';
import { JobName, WEBHOOK_QUEUE } from '../jobs/job.types';
import { JOB_QUEUE } from '../jobs/queue.module';
import type { JobQueueRepository } from '../repositories/job-queue/job-queue.repository';
import { PrivateAddressError, resolveAllowed } from '../repositories/outbound-http/guarded-network';
import { WebhookSignerRepository } from '../repositories/webhook-signer.repository';
import { SecretBox } from '../secrets/secret-box';
import { MAX_WEBHOOK_URL_LENGTH, parseEvents, webhookUrlProblem } from './webhook-policy';
import { ProjectAccess, WebhookStore } from './webhook-store';
import type { MessageStatus, WebhookEndpointDoc, WebhookEndpointView, WebhookMessageDoc, WebhookMessageView } from './webhook.types';

/** Endpoints one project may register. */
export const MAX_ENDPOINTS_PER_PROJECT = 50;
export const MAX_DESCRIPTION_LENGTH = 500;
/** How long, by default, the previous secret also signs after a rotation. */
export const DEFAULT_OLD_SECRET_SECONDS = 24 * 3600;
const MAX_OLD_SECRET_SECONDS = 7 * 24 * 3600;
const DEFAULT_LOG_LIMIT = 50;
const MAX_LOG_LIMIT = 200;
/** How long a host name's resolution may take at registration before it is accepted unchecked (each send checks it again). */
const RESOLVE_TIMEOUT_MS = 3000;

const ENDPOINT_ID = /^ep_[A-Za-z0-9_-]{8,64}$/;
const MESSAGE_ID = /^msg_[A-Za-z0-9_-]{8,64}$/;
const STATUSES: readonly MessageStatus[] = ['pending', 'delivered', 'failed'];

const text = (max: number) => z.string().max(max, `at most ${max} characters`);
const createSchema = z.object({ url: text(MAX_WEBHOOK_URL_LENGTH), events: z.array(z.unknown()).optional(), description: text(MAX_DESCRIPTION_LENGTH).optional() }).strict();
const updateSchema = z
  .object({ url: text(MAX_WEBHOOK_URL_LENGTH).optional(), events: z.array(z.unknown()).optional(), description: text(MAX_DESCRIPTION_LENGTH).nullable().optional(), disabled: z.boolean().optional() })
  .strict();
const rotateSchema = z.object({ oldSecretValidSeconds: z.number().int().min(0).max(MAX_OLD_SECRET_SECONDS).optional() }).strict();

/** A request body checked against `schema`: every problem a 400 naming its field. */
function parseBody<T>(schema: z.ZodType<T>, body: unknown, what: string): T {
  const parsed = schema.safeParse(body ?? {});
  if (parsed.success) return parsed.data;
  const details = parsed.error.issues.map((i) => ({
    field: i.path.join('.') || (i.code === 'unrecognized_keys' ? i.keys.join(', ') : '(body)'),
    message: i.code === 'unrecognized_keys' ? `unknown field${i.keys.length > 1 ? 's' : ''}: ${i.keys.join(', ')}` : i.code === 'invalid_type' && i.path.length === 0 ? 'expected a JSON object' : i.message,
  }));
  throw badInput(`invalid ${what}: ${details.map((d) => `${d.field}: ${d.message}`).join('; ')}`, details);
}

export function endpointView(doc: WebhookEndpointDoc): WebhookEndpointView {
  return {
    id: doc._id,
    url: doc.url,
    events: doc.events,
    ...(doc.description !== undefined ? { description: doc.description } : {}),
    ...(doc.disabled ? { disabled: doc.disabled } : {}),
    createdAt: doc.createdAt,
    updatedAt: doc.updatedAt,
  };
}

export function messageView(doc: WebhookMessageDoc): WebhookMessageView {
  return {
    id: doc._id,
    type: doc.type,
    status: doc.status,
    createdAt: doc.createdAt,
    attempts: doc.attempts,
    attemptCount: doc.attemptCount,
    ...(doc.status === 'pending' && doc.nextAttemptAt ? { nextAttemptAt: doc.nextAttemptAt } : {}),
    ...(doc.deliveredAt ? { deliveredAt: doc.deliveredAt } : {}),
    ...(doc.lastError ? { lastError: doc.lastError } : {}),
    replays: doc.replays,
    ...(doc.orderKey !== undefined ? { orderKey: doc.orderKey } : {}),
  };
}

/**
 * A project's webhook endpoints: registered with a URL and the events they want, their secret
 * shown once (at creation and at each rotation) and sealed at rest, their delivery log and
 * replays. Every call needs the project's API key.
 */
@Injectable()
export class WebhookEndpointsService {
  /** Host names are resolved at registration (replaceable in tests). */
  resolveHost: (host: string, allowPrivate: boolean) => Promise<string> = resolveAllowed;

  constructor(
    private readonly store: WebhookStore,
    private readonly access: ProjectAccess,
    private readonly secrets: SecretBox,
    private readonly signer: WebhookSignerRepository,
    @Inject(JOB_QUEUE) private readonly queue: Pick<JobQueueRepository, 'enqueue'>,
    @Inject(MONTAGE_CONFIG) private readonly config: MontageConfig,
  ) {}

  async create(project: string, apiKey: string | undefined, body: unknown): Promise<WebhookEndpointView & { secret: string }> {
    await this.access.authenticate(project, apiKey);
    const input = parseBody(createSchema, body, 'webhook endpoint');
    const url = await this.checkedUrl(input.url);
    const events = parseEvents(input.events ?? ['*']);
    const description = this.checkedDescription(input.description);
    const count = await this.store.endpoints.countDocuments({ project });
    if (count >= MAX_ENDPOINTS_PER_PROJECT) {
      throw badInput(`project "${project}" has ${count} webhook endpoints already; the limit is ${MAX_ENDPOINTS_PER_PROJECT}`, [{ field: 'url', message: 'too many endpoints' }]);
    }
    const secret = this.signer.newSecret();
    const now = new Date().toISOString();
    const doc: WebhookEndpointDoc = {
      _id: `ep_${randomBytes(12).toString('base64url')}`,
      project,
      url,
      events,
      ...(description !== undefined ? { description } : {}),
      secret: this.secrets.seal(secret),
      createdAt: now,
      updatedAt: now,
    };
    await this.store.endpoints.insertOne(doc);
    return { ...endpointView(doc), secret };
  }

  async list(project: string, apiKey: string | undefined): Promise<{ endpoints: WebhookEndpointView[] }> {
    await this.access.authenticate(project, apiKey);
    const docs = await this.store.endpoints.find({ project }, { sort: { createdAt: 1 } });
    return { endpoints: docs.map(endpointView) };
  }

  async get(project: string, apiKey: string | undefined, id: string): Promise<WebhookEndpointView> {
    await this.access.authenticate(project, apiKey);
    return endpointView(await this.find(project, id));
  }

  async update(project: string, apiKey: string | undefined, id: string, body: unknown): Promise<WebhookEndpointView> {
    await this.access.authenticate(project, apiKey);
    const input = parseBody(updateSchema, body, 'webhook endpoint change');
    const existing = await this.find(project, id);
    if (Object.keys(input).length === 0) throw badInput('nothing to change: send url, events, description or disabled', [{ field: '(body)', message: 'empty' }]);
    const now = new Date().toISOString();
    const set: Record<string, unknown> = { updatedAt: now };
    const unset: Record<string, 1> = {};
    if (input.url !== undefined) set.url = await this.checkedUrl(input.url);
    if (input.events !== undefined) set.events = parseEvents(input.events);
    if (input.description === null) unset.description = 1;
    else if (input.description !== undefined) set.description = this.checkedDescription(input.description);
    if (input.disabled === false) unset.disabled = 1;
    else if (input.disabled === true && !existing.disabled) set.disabled = { at: now, reason: 'disabled through the API' };
    const updated = await this.store.endpoints.findOneAndUpdate({ _id: existing._id, project }, { $set: set, ...(Object.keys(unset).length ? { $unset: unset } : {}) });
    if (!updated) throw this.unknown(id);
    return endpointView(updated);
  }

  /** The endpoint and its delivery log. */
  async remove(project: string, apiKey: string | undefined, id: string): Promise<{ deleted: string }> {
    await this.access.authenticate(project, apiKey);
    const existing = await this.find(project, id);
    await this.store.endpoints.deleteOne({ _id: existing._id, project });
    await this.store.messages.deleteMany({ endpoint: existing._id });
    return { deleted: existing._id };
  }

  /**
   * A new secret, shown once. The previous one keeps signing alongside it (a second signature
   * in `webhook-signature`) for `oldSecretValidSeconds` (default 24 h; 0 stops it now), so a
   * receiver can switch without losing messages.
   */
  async rotateSecret(project: string, apiKey: string | undefined, id: string, body: unknown): Promise<{ id: string; secret: string; previousSecretValidUntil?: string }> {
    await this.access.authenticate(project, apiKey);
    const input = parseBody(rotateSchema, body, 'rotation');
    const existing = await this.find(project, id);
    const keep = input.oldSecretValidSeconds ?? DEFAULT_OLD_SECRET_SECONDS;
    const secret = this.signer.newSecret();
    const now = new Date();
    const until = new Date(now.getTime() + keep * 1000).toISOString();
    const updated = await this.store.endpoints.findOneAndUpdate(
      { _id: existing._id, project, secret: existing.secret },
      keep > 0
        ? { $set: { secret: this.secrets.seal(secret), previousSecret: existing.secret, previousSecretUntil: until, updatedAt: now.toISOString() } }
        : { $set: { secret: this.secrets.seal(secret), updatedAt: now.toISOString() }, $unset: { previousSecret: 1, previousSecretUntil: 1 } },
    );
    if (!updated) throw badInput('the secret was rotated by another request at the same time; try again', [{ field: 'id', message: 'concurrent rotation' }]);
    return { id: existing._id, secret, ...(keep > 0 ? { previousSecretValidUntil: until } : {}) };
  }

  /** The delivery log, newest first: `status` filters, `limit` (1–200, default 50). */
  async deliveries(project: string, apiKey: string | undefined, id: string, query: Record<string, unknown>): Promise<{ endpoint: string; messages: WebhookMessageView[] }> {
    await this.access.authenticate(project, apiKey);
    const unknownParams = Object.keys(query).filter((k) => k !== 'status' && k !== 'limit');
    if (unknownParams.length > 0) {
      throw badInput(`unknown query parameter${unknownParams.length > 1 ? 's' : ''} ${unknownParams.map((k) => `"${k.slice(0, 40)}"`).join(', ')}; use status and limit`, unknownParams.slice(0, 5).map((k) => ({ field: k.slice(0, 40), message: 'unknown parameter' })));
    }
    const status = query.status;
    if (status !== undefined && (typeof status !== 'string' || !STATUSES.includes(status as MessageStatus))) {
      throw badInput(`status must be one of ${STATUSES.join(', ')}`, [{ field: 'status', message: `one of ${STATUSES.join(', ')}` }]);
    }
    const rawLimit = query.limit;
    const limit = rawLimit === undefined ? DEFAULT_LOG_LIMIT : typeof rawLimit === 'string' && /^\d{1,3}$/.test(rawLimit) ? Number(rawLimit) : NaN;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LOG_LIMIT) {
      throw badInput(`limit must be a whole number from 1 to ${MAX_LOG_LIMIT}`, [{ field: 'limit', message: `1–${MAX_LOG_LIMIT}` }]);
    }
    const existing = await this.find(project, id);
    const docs = await this.store.messages.find({ endpoint: existing._id, ...(status ? { status: status as string } : {}) }, { sort: { seq: -1 }, limit });
    return { endpoint: existing._id, messages: docs.map(messageView) };
  }

  /** Sends a message of this endpoint again, same webhook-id, on a fresh retry schedule. */
  async replay(project: string, apiKey: string | undefined, id: string, messageId: string): Promise<{ message: string; status: 'pending'; replay: number }> {
    await this.access.authenticate(project, apiKey);
    const endpoint = await this.find(project, id);
    if (endpoint.disabled) {
      throw badInput(`endpoint ${endpoint._id} is disabled (${endpoint.disabled.reason}); re-enable it first with PATCH {"disabled": false}`, [{ field: 'id', message: 'endpoint disabled' }]);
    }
    const unknownMessage = () => notFound('unknown message of this endpoint', [{ field: 'message', message: 'unknown message' }]);
    if (!MESSAGE_ID.test(messageId)) throw unknownMessage();
    const now = new Date().toISOString();
    const updated = await this.store.messages.findOneAndUpdate(
      { _id: messageId, endpoint: endpoint._id },
      { $set: { status: 'pending', attemptCount: 0, nextAttemptAt: now, touchedAt: now }, $unset: { deliveredAt: 1, lastError: 1 }, $inc: { replays: 1 } },
    );
    if (!updated) throw unknownMessage();
    await this.queue.enqueue(WEBHOOK_QUEUE, JobName.SendWebhook, { message: updated._id }, `${updated._id}-replay-${updated.replays}`);
    return { message: updated._id, status: 'pending', replay: updated.replays };
  }

  private async find(project: string, id: string): Promise<WebhookEndpointDoc> {
    const doc = ENDPOINT_ID.test(id) ? await this.store.endpoints.findOne({ _id: id, project }) : null;
    if (!doc) throw this.unknown(id);
    return doc;
  }

  private unknown(id: string) {
    return notFound(`unknown webhook endpoint "${id.slice(0, 70)}"`, [{ field: 'id', message: 'unknown endpoint of this project' }]);
  }

  private checkedDescription(description: string | undefined): string | undefined {
    if (description === undefined) return undefined;
    const unsafe = unsafeCharacter(description);
    if (unsafe) throw badInput(`description contains ${unsafe}`, [{ field: 'description', message: `contains ${unsafe}` }]);
    return description;
  }

  /** The URL as registered: its shape, then (unless private addresses are allowed) where its host resolves now. */
  private async checkedUrl(raw: string): Promise<string> {
    const allowPrivate = this.config.deliveries.allowPrivateAddresses;
    const refuse = (problem: string) => badInput(`url is not allowed: ${problem}`, [{ field: 'url', message: problem }]);
    const problem = webhookUrlProblem(raw, allowPrivate);
    if (problem) throw refuse(problem);
    const url = new URL(raw);
    if (!allowPrivate) {
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([this.resolveHost(url.hostname, false), new Promise((resolve) => (timer = setTimeout(resolve, RESOLVE_TIMEOUT_MS)))]);
      } catch (err) {
        // A name that does not resolve now may later: every send checks again.
        if (err instanceof PrivateAddressError) throw refuse(err.message);
      } finally {
        clearTimeout(timer);
      }
    }
    return url.href;
  }
}
