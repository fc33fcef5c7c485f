import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import type { MontageConfig } from '../../src/config/config';
import { JobName, RetryLater, WEBHOOK_QUEUE } from '../../src/jobs/job.types';
import { type Collection, DuplicateKeyError, type Filter, type FindOptions, type StoredDocument, type Update } from '../../src/repositories/document-store/port';
import { OutboundError, type OutboundRequest, type OutboundResponse } from '../../src/repositories/outbound-http/outbound-http.repository';
import { PrivateAddressError } from '../../src/repositories/outbound-http/guarded-network';
import { WebhookSignerRepository } from '../../src/repositories/webhook-signer.repository';
import { RenderEvents } from '../../src/renders/render-events';
import type { TokenDoc } from '../../src/renders/render.types';
import { SecretBox } from '../../src/secrets/secret-box';
import { RenderWebhooks } from '../../src/webhooks/render-webhooks';
import { GATE_MAX_MS, GATE_MIN_MS } from '../../src/webhooks/webhook-policy';
import { WebhookEndpointsService } from '../../src/webhooks/webhook-endpoints.service';
import { WebhookSender } from '../../src/webhooks/webhook-sender.service';
import type { ProjectAccess, WebhookStore } from '../../src/webhooks/webhook-store';
import type { WebhookEndpointDoc, WebhookMessageDoc } from '../../src/webhooks/webhook.types';
import { WebhooksService } from '../../src/webhooks/webhooks.service';

// The webhook services with their repositories replaced: an in-memory document store that
// honours the port's filters and updates, a queue and an HTTP client that record calls.

class MemoryCollection<T extends StoredDocument> implements Collection<T> {
  readonly docs = new Map<string, T>();

  async insertOne(doc: T): Promise<void> {
    if (this.docs.has(doc._id)) throw new DuplicateKeyError(`duplicate _id ${doc._id}`);
    this.docs.set(doc._id, structuredClone(doc));
  }
  async findOne(filter: Filter): Promise<T | null> {
    return (await this.find(filter, { limit: 1 }))[0] ?? null;
  }
  async find(filter: Filter, options: FindOptions = {}): Promise<T[]> {
    let found = [...this.docs.values()].filter((d) => matches(d, filter));
    const sort = Object.entries(options.sort ?? {})[0];
    if (sort) found.sort((a, b) => (field(a, sort[0]) < field(b, sort[0]) ? -sort[1] : field(a, sort[0]) > field(b, sort[0]) ? sort[1] : 0));
    if (options.limit) found = found.slice(0, options.limit);
    return found.map((d) => structuredClone(d));
  }
  async findOneAndUpdate(filter: Filter, update: Update): Promise<T | null> {
    const doc = [...this.docs.values()].find((d) => matches(d, filter));
    if (!doc) return null;
    apply(doc, update);
    return structuredClone(doc);
  }
  async updateMany(filter: Filter, update: Update): Promise<number> {
    const hit = [...this.docs.values()].filter((d) => matches(d, filter));
    for (const doc of hit) apply(doc, update);
    return hit.length;
  }
  async deleteOne(filter: Filter): Promise<number> {
    const doc = [...this.docs.values()].find((d) => matches(d, filter));
    return doc ? (this.docs.delete(doc._id), 1) : 0;
  }
  async deleteMany(filter: Filter): Promise<number> {
    const hit = [...this.docs.values()].filter((d) => matches(d, filter));
    for (const d of hit) this.docs.delete(d._id);
    return hit.length;
  }
  async countDocuments(filter: Filter): Promise<number> {
    return [...this.docs.values()].filter((d) => matches(d, filter)).length;
  }
  async ensureIndex(): Promise<void> {}
}

const field = (doc: unknown, name: string) => (doc as Record<string, never>)[name];

function matches(doc: unknown, filter: Filter): boolean {
  return Object.entries(filter).every(([name, cond]) => {
    const value = field(doc, name) as unknown;
    if (cond !== null && typeof cond === 'object') {
      return Object.entries(cond).every(([op, arg]) => {
        const v = value as number | string;
        if (op === '$exists') return (value !== undefined) === arg;
        if (op === '$ne') return value !== arg;
        if (op === '$in') return (arg as unknown[]).includes(value);
        if (value === undefined) return false;
        if (op === '$lt') return v < (arg as number | string);
        if (op === '$lte') return v <= (arg as number | string);
        if (op === '$gt') return v > (arg as number | string);
        if (op === '$gte') return v >= (arg as number | string);
        throw new Error(`operator ${op} not faked`);
      });
    }
    return Array.isArray(value) ? value.includes(cond) : value === cond;
  });
}

function apply(doc: object, update: Update): void {
  const d = doc as Record<string, unknown>;
  for (const [k, v] of Object.entries(update.$set ?? {})) d[k] = structuredClone(v);
  for (const k of Object.keys(update.$unset ?? {})) delete d[k];
  for (const [k, v] of Object.entries(update.$inc ?? {})) d[k] = ((d[k] as number) ?? 0) + v;
}

const PUBLIC_URL = 'https://montage.example';

function setup(schedule = [5, 300]) {
  const store = {
    endpoints: new MemoryCollection<WebhookEndpointDoc>(),
    messages: new MemoryCollection<WebhookMessageDoc>(),
    tokens: new MemoryCollection<TokenDoc>(),
  };
  const config = { publicUrl: PUBLIC_URL, deliveries: { workers: true, allowPrivateAddresses: false, webhookConcurrency: 4, webhookTimeoutMs: 1500, webhookRetrySchedule: schedule } } as unknown as MontageConfig;
  const queue = { enqueue: jest.fn(async (..._args: unknown[]) => undefined) };
  const responses: Array<Partial<OutboundResponse> | Error> = [];
  const sent: OutboundRequest[] = [];
  const http = {
    send: jest.fn(async (req: OutboundRequest): Promise<OutboundResponse> => {
      sent.push(req);
      const next = responses.shift() ?? { status: 200 };
      if (next instanceof Error) throw next;
      return { status: 200, headers: {}, body: '', durationMs: 12, ...next };
    }),
  };
  const secrets = new SecretBox(randomBytes(32));
  const signer = new WebhookSignerRepository();
  const webhookStore = store as unknown as WebhookStore;
  const service = new WebhooksService(webhookStore, queue, secrets, signer, config);
  const sender = new WebhookSender(webhookStore, http as never, secrets, signer, queue, config);
  const access = { authenticate: jest.fn(async (project: string, key?: string) => ({ _id: project, key })) };
  const endpointsService = new WebhookEndpointsService(webhookStore, access as unknown as ProjectAccess, secrets, signer, queue, config);

  /** An endpoint stored as the API stores it; returns its id and plain secret. */
  async function endpoint(events: string[], extra: Partial<WebhookEndpointDoc> = {}, project = 't') {
    const secret = signer.newSecret();
    const id = `ep_${randomBytes(9).toString('base64url')}`;
    const now = new Date().toISOString();
    await store.endpoints.insertOne({ _id: id, project, url: `https://hooks.example/${id}`, events, secret: secrets.seal(secret), createdAt: now, updatedAt: now, ...extra });
    return { id, secret };
  }
  const messagesOf = (endpointId: string) => [...store.messages.docs.values()].filter((m) => m.endpoint === endpointId).sort((a, b) => a.seq - b.seq);
  /** Time passes for a message: its next attempt is due now. */
  const due = (id: string) => Object.assign(store.messages.docs.get(id)!, { nextAttemptAt: new Date(Date.now() - 1).toISOString() });
  return { store, config, queue, http, sent, responses, secrets, signer, service, sender, access, endpointsService, endpoint, messagesOf, due };
}

async function retryLater(promise: Promise<unknown>): Promise<RetryLater> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RetryLater);
  return err as RetryLater;
}

describe('WebhooksService.emit', () => {
  it('fans an event out only to the project’s enabled endpoints that subscribe to its type, one job each', async () => {
    const s = setup();
    const renders = await s.endpoint(['render.*']);
    const uploads = await s.endpoint(['upload.*']);
    const all = await s.endpoint(['*']);
    const exact = await s.endpoint(['render.failed', 'render.completed']);
    const disabled = await s.endpoint(['*'], { disabled: { at: new Date().toISOString(), reason: 'gone' } });
    const otherProject = await s.endpoint(['*'], {}, 'other');
    await s.service.emit('t', 'render.completed', { token: 'tok', bytes: 5 }, { eventId: 'render.completed:tok:mp4:1', orderKey: 'tok' });

    for (const e of [renders, all, exact]) expect(s.messagesOf(e.id)).toHaveLength(1);
    for (const e of [uploads, disabled, otherProject]) expect(s.messagesOf(e.id)).toHaveLength(0);
    const message = s.messagesOf(renders.id)[0];
    expect(message).toMatchObject({ project: 't', type: 'render.completed', status: 'pending', attempts: [], attemptCount: 0, orderKey: 'tok', replays: 0, leaseUntil: 0 });
    expect(message._id).toMatch(/^msg_/);
    expect(message.nextAttemptAt).toBe(message.createdAt);
    expect(JSON.parse(message.body)).toEqual({ type: 'render.completed', timestamp: message.createdAt, data: { token: 'tok', bytes: 5 } });
    expect(s.queue.enqueue).toHaveBeenCalledTimes(3);
    expect(s.queue.enqueue).toHaveBeenCalledWith(WEBHOOK_QUEUE, JobName.SendWebhook, { message: message._id }, message._id);
  });

  it('makes one message of the same event said twice (two API processes), and two of two events', async () => {
    const s = setup();
    const e = await s.endpoint(['*']);
    await s.service.emit('t', 'render.processing', { n: 1 }, { eventId: 'render.processing:tok:mp4:1', orderKey: 'tok' });
    await s.service.emit('t', 'render.processing', { n: 2 }, { eventId: 'render.processing:tok:mp4:1', orderKey: 'tok' });
    expect(s.messagesOf(e.id)).toHaveLength(1);
    expect(JSON.parse(s.messagesOf(e.id)[0].body).data).toEqual({ n: 1 }); // the first one said
    const jobIds = s.queue.enqueue.mock.calls.map((c) => c[3]);
    expect(jobIds).toEqual([s.messagesOf(e.id)[0]._id, s.messagesOf(e.id)[0]._id]); // the queue keeps one job per id
    await s.service.emit('t', 'render.processing', { n: 3 }, { eventId: 'render.processing:tok:mp4:2', orderKey: 'tok' });
    expect(s.messagesOf(e.id)).toHaveLength(2);
  });

  it('keeps the message when the queue is away: the sweep queues it once it is overdue and untouched', async () => {
    const s = setup();
    const e = await s.endpoint(['*']);
    s.queue.enqueue.mockRejectedValueOnce(new Error('the job queue (Redis) is unreachable'));
    await expect(s.service.emit('t', 'batch.completed', {}, { eventId: 'b1' })).resolves.toBeUndefined();
    const [message] = s.messagesOf(e.id);
    expect(message.status).toBe('pending');
    expect(await s.sender.sweep(Date.now())).toBe(0); // not overdue yet
    const later = Date.now() + 3 * 60_000;
    expect(await s.sender.sweep(later)).toBe(1);
    expect(s.queue.enqueue).toHaveBeenLastCalledWith(WEBHOOK_QUEUE, JobName.SendWebhook, { message: message._id }, expect.stringMatching(new RegExp(`^${message._id}-sweep-\\d+$`)));
    // A message that is being looked after (touched recently) is left alone.
    s.store.messages.docs.get(message._id)!.touchedAt = new Date(later).toISOString();
    expect(await s.sender.sweep(later)).toBe(0);
  });

  it('prunes delivered and failed messages past the log’s retention, never pending ones', async () => {
    const s = setup();
    const e = await s.endpoint(['*']);
    for (let i = 0; i < 3; i++) await s.service.emit('t', 'upload.started', { i }, { eventId: `p${i}` });
    const [a, b, c] = s.messagesOf(e.id);
    await s.sender.handle({ message: a._id });
    Object.assign(s.store.messages.docs.get(b._id)!, { status: 'failed' });
    expect(await s.sender.prune(Date.now())).toBe(0);
    expect(await s.sender.prune(Date.now() + 31 * 24 * 3600_000)).toBe(2);
    expect(s.messagesOf(e.id).map((m) => m._id)).toEqual([c._id]);
  });

  it('sends direct targets with the given secret, sealed at rest; refuses a bad URL or secret', async () => {
    const s = setup();
    const secret = s.service.newSecret();
    await s.service.sendDirect('t', { url: 'https://batch.example/hook', secret }, 'batch.output', { uuid: 'b' }, { eventId: 'b.group.0', orderKey: 'b' });
    const [message] = s.messagesOf('direct');
    expect(message).toMatchObject({ url: 'https://batch.example/hook', type: 'batch.output', orderKey: 'b' });
    expect(SecretBox.isSealed(message.secret)).toBe(true);
    expect(JSON.stringify(message)).not.toContain(secret.slice(6));
    await s.sender.handle({ message: message._id });
    const headers = s.sent[0].headers!;
    expect(() => new Webhook(secret).verify(message.body, headers)).not.toThrow();
    await expect(s.service.sendDirect('t', { url: 'http://10.0.0.1/x', secret }, 'batch.output', {}, { eventId: 'x' })).rejects.toMatchObject({ kind: 'bad_input' });
    await expect(s.service.sendDirect('t', { url: 'https://batch.example/hook', secret: 'whsec_short' }, 'batch.output', {}, { eventId: 'x' })).rejects.toMatchObject({ kind: 'bad_input' });
  });
});

describe('WebhookSender', () => {
  it('delivers on 2xx: one signed POST of the stored body, verifiable with the endpoint’s secret', async () => {
    const s = setup();
    const e = await s.endpoint(['*']);
    await s.service.emit('t', 'upload.completed', { upload: 'u1' }, { eventId: 'u1' });
    const [message] = s.messagesOf(e.id);
    await expect(s.sender.handle({ message: message._id })).resolves.toEqual({ status: 'delivered' });
    expect(s.sent).toHaveLength(1);
    const req = s.sent[0];
    expect(req).toMatchObject({ method: 'POST', url: `https://hooks.example/${e.id}`, body: message.body, timeoutMs: 1500, allowPrivateAddresses: false });
    expect(req.headers!['content-type']).toBe('application/json');
    expect(req.headers!['webhook-id']).toBe(message._id);
    expect(new Webhook(e.secret).verify(message.body, req.headers!)).toEqual(JSON.parse(message.body));
    const after = s.messagesOf(e.id)[0];
    expect(after).toMatchObject({ status: 'delivered', attemptCount: 1, leaseUntil: 0, attempts: [{ status: 200, ms: 12 }] });
    expect(after.nextAttemptAt).toBeUndefined();
    // Its job again (a replayed or swept duplicate): nothing more is sent.
    await expect(s.sender.handle({ message: message._id })).resolves.toEqual({ status: 'delivered' });
    expect(s.sent).toHaveLength(1);
  });

  it('retries failures on the schedule with RetryLater (no BullMQ attempt), then fails for good', async () => {
    const s = setup([5, 300]);
    const e = await s.endpoint(['*']);
    await s.service.emit('t', 'render.failed', {}, { eventId: 'f1' });
    const id = s.messagesOf(e.id)[0]._id;
    s.responses.push({ status: 500 }, new OutboundError('refused', 'hooks.example refused the connection'), { status: 503 });

    const first = await retryLater(s.sender.handle({ message: id }));
    expect(first.delayMs).toBeGreaterThanOrEqual(4000);
    expect(first.delayMs).toBeLessThanOrEqual(6000);
    let doc = s.messagesOf(e.id)[0];
    expect(doc).toMatchObject({ status: 'pending', attemptCount: 1, leaseUntil: 0, lastError: 'the receiver answered 500' });
    expect(Date.parse(doc.nextAttemptAt!) - Date.now()).toBeGreaterThan(3500);

    // Woken early (a duplicate job): it waits, without sending.
    const early = await retryLater(s.sender.handle({ message: id }));
    expect(early.delayMs).toBeGreaterThan(3000);
    expect(s.sent).toHaveLength(1);

    s.due(id);
    const second = await retryLater(s.sender.handle({ message: id }));
    expect(second.delayMs).toBeGreaterThanOrEqual(240_000);
    expect(second.delayMs).toBeLessThanOrEqual(360_000);
    doc = s.messagesOf(e.id)[0];
    expect(doc.attempts[1]).toMatchObject({ error: 'hooks.example refused the connection' });
    expect(doc.attempts[1].status).toBeUndefined();

    s.due(id);
    await expect(s.sender.handle({ message: id })).resolves.toEqual({ status: 'failed' });
    doc = s.messagesOf(e.id)[0];
    expect(doc).toMatchObject({ status: 'failed', attemptCount: 3, lastError: 'the receiver answered 503' });
    expect(doc.attempts.map((a) => a.status)).toEqual([500, undefined, 503]);
    expect(s.sent).toHaveLength(3);
    expect(new Set(s.sent.map((r) => r.headers!['webhook-id'])).size).toBe(1);
  });

  it('sends a payload as the whole body when asked (VNTANA receivers read body.event), still signed', async () => {
    const s = setup();
    const e = await s.endpoint(['renders.*']);
    const payload = { event: 'renders.completed', product: { uuid: 'u-1' }, organization: { uuid: 't' } };
    await s.service.emit('t', 'renders.completed', payload, { eventId: 'prr_1:renders.completed', bodyIsData: true });
    const [message] = s.messagesOf(e.id);
    expect(JSON.parse(message.body)).toEqual(payload);
    await expect(s.sender.handle({ message: message._id })).resolves.toEqual({ status: 'delivered' });
    expect(s.sent[0].body).toBe(message.body);
    expect(new Webhook(e.secret).verify(message.body, s.sent[0].headers!)).toEqual(payload);
  });

  it('waits as long as Retry-After says, capped at the largest step', async () => {
    const s = setup([5, 300]);
    const e = await s.endpoint(['*']);
    await s.service.emit('t', 'render.failed', {}, { eventId: 'ra' });
    const id = s.messagesOf(e.id)[0]._id;
    s.responses.push({ status: 429, headers: { 'retry-after': '120' } }, { status: 503, headers: { 'retry-after': '86400' } });
    expect((await retryLater(s.sender.handle({ message: id }))).delayMs).toBe(120_000);
    s.due(id);
    expect((await retryLater(s.sender.handle({ message: id }))).delayMs).toBe(300_000);
  });

  it('counts a redirect as a failure (never followed)', async () => {
    const s = setup();
    const e = await s.endpoint(['*']);
    await s.service.emit('t', 'render.failed', {}, { eventId: 'r' });
    s.responses.push({ status: 302, headers: { location: 'http://10.0.0.1/' } });
    await retryLater(s.sender.handle({ message: s.messagesOf(e.id)[0]._id }));
    expect(s.messagesOf(e.id)[0].attempts[0]).toMatchObject({ status: 302, error: 'redirect (302) not followed' });
    expect(s.http.send).toHaveBeenCalledTimes(1);
  });

  it('on 410 disables the endpoint and fails its waiting messages; later events make none', async () => {
    const s = setup();
    const e = await s.endpoint(['*']);
    const other = await s.endpoint(['*']);
    await s.service.emit('t', 'render.pending', {}, { eventId: 'g1', orderKey: 'tok' });
    await s.service.emit('t', 'render.processing', {}, { eventId: 'g2', orderKey: 'tok' });
    const [first, second] = s.messagesOf(e.id);
    s.responses.push({ status: 410 });
    await expect(s.sender.handle({ message: first._id })).resolves.toEqual({ status: 'gone' });
    const endpoint = s.store.endpoints.docs.get(e.id)!;
    expect(endpoint.disabled?.reason).toMatch(/410 Gone/);
    expect(s.messagesOf(e.id).map((m) => m.status)).toEqual(['failed', 'failed']);
    await expect(s.sender.handle({ message: second._id })).resolves.toEqual({ status: 'failed' });
    expect(s.sent).toHaveLength(1);
    await s.service.emit('t', 'render.completed', {}, { eventId: 'g3', orderKey: 'tok' });
    expect(s.messagesOf(e.id)).toHaveLength(2);
    // Other endpoints are not concerned.
    expect(s.messagesOf(other.id).every((m) => m.status === 'pending')).toBe(true);
    expect(s.messagesOf(other.id)).toHaveLength(3);
  });

  it('sends messages of one (endpoint, order key) in order: a later one waits for an earlier pending one, without spending its schedule', async () => {
    const s = setup([5, 300]);
    const e = await s.endpoint(['*']);
    const f = await s.endpoint(['*']);
    await s.service.emit('t', 'render.pending', { step: 1 }, { eventId: 'o1', orderKey: 'tok' });
    await s.service.emit('t', 'render.processing', { step: 2 }, { eventId: 'o2', orderKey: 'tok' });
    await s.service.emit('t', 'render.processing', { step: 1 }, { eventId: 'o3', orderKey: 'another-token' });
    const [a, b, c] = s.messagesOf(e.id);
    const [fa] = s.messagesOf(f.id);

    // B first: A is pending and due.
    const waiting = await retryLater(s.sender.handle({ message: b._id }));
    expect(waiting.delayMs).toBe(GATE_MIN_MS);
    expect(s.sent).toHaveLength(0);
    // Other keys, and the same key at another endpoint, do not wait.
    await s.sender.handle({ message: c._id });
    await s.sender.handle({ message: fa._id });
    expect(s.sent).toHaveLength(2);

    // A fails: B waits until just after A's next attempt (at most GATE_MAX_MS at a time).
    s.responses.push({ status: 500 });
    const aRetry = await retryLater(s.sender.handle({ message: a._id }));
    const bWait = await retryLater(s.sender.handle({ message: b._id }));
    expect(bWait.delayMs).toBeGreaterThan(GATE_MIN_MS);
    expect(bWait.delayMs).toBeLessThanOrEqual(Math.min(GATE_MAX_MS, aRetry.delayMs + 100));
    expect(s.messagesOf(e.id)[1].attemptCount).toBe(0);

    s.due(a._id);
    await s.sender.handle({ message: a._id });
    await expect(s.sender.handle({ message: b._id })).resolves.toEqual({ status: 'delivered' });
    const order = s.sent.filter((r) => r.url.endsWith(e.id)).map((r) => JSON.parse(r.body as string).data);
    expect(order).toEqual([{ step: 1 }, { step: 1 }, { step: 1 }, { step: 2 }]); // C, A (failed), A, B
  });

  it('does not let an earlier message that failed for good block the rest', async () => {
    const s = setup([1]);
    const e = await s.endpoint(['*']);
    await s.service.emit('t', 'render.pending', {}, { eventId: 'x1', orderKey: 'tok' });
    await s.service.emit('t', 'render.processing', {}, { eventId: 'x2', orderKey: 'tok' });
    const [a, b] = s.messagesOf(e.id);
    s.responses.push({ status: 500 }, { status: 500 });
    await retryLater(s.sender.handle({ message: a._id }));
    s.due(a._id);
    await expect(s.sender.handle({ message: a._id })).resolves.toEqual({ status: 'failed' });
    await expect(s.sender.handle({ message: b._id })).resolves.toEqual({ status: 'delivered' });
  });

  it('leaves a message another worker is sending alone', async () => {
    const s = setup();
    const e = await s.endpoint(['*']);
    await s.service.emit('t', 'render.pending', {}, { eventId: 'l1' });
    const [m] = s.messagesOf(e.id);
    s.store.messages.docs.get(m._id)!.leaseUntil = Date.now() + 3000;
    const wait = await retryLater(s.sender.handle({ message: m._id }));
    expect(wait.delayMs).toBeGreaterThanOrEqual(250);
    expect(wait.delayMs).toBeLessThanOrEqual(3000);
    expect(s.sent).toHaveLength(0);
  });

  it('fails without sending when the endpoint is gone or its secret cannot be opened; a missing message is done', async () => {
    const s = setup();
    const e = await s.endpoint(['*']);
    const sealedElsewhere = await s.endpoint(['*'], { secret: new SecretBox(randomBytes(32)).seal('whsec_x') });
    await s.service.emit('t', 'render.pending', {}, { eventId: 'd1' });
    s.store.endpoints.docs.delete(e.id);
    await expect(s.sender.handle({ message: s.messagesOf(e.id)[0]._id })).resolves.toEqual({ status: 'failed' });
    expect(s.messagesOf(e.id)[0].lastError).toBe('the endpoint was deleted');
    await expect(s.sender.handle({ message: s.messagesOf(sealedElsewhere.id)[0]._id })).resolves.toEqual({ status: 'failed' });
    expect(s.messagesOf(sealedElsewhere.id)[0].lastError).toMatch(/cannot open the signing secret: .*another secret key/);
    await expect(s.sender.handle({ message: 'msg_nothere' })).resolves.toEqual({ status: 'missing' });
    expect(s.sent).toHaveLength(0);
  });

  it('signs with the previous secret too while a rotation settles', async () => {
    const s = setup();
    const old = s.signer.newSecret();
    const e = await s.endpoint(['*'], { previousSecret: s.secrets.seal(old), previousSecretUntil: new Date(Date.now() + 60_000).toISOString() });
    await s.service.emit('t', 'render.pending', {}, { eventId: 'rot' });
    await s.sender.handle({ message: s.messagesOf(e.id)[0]._id });
    const { headers, body } = s.sent[0];
    expect(headers!['webhook-signature'].split(' ')).toHaveLength(2);
    expect(() => new Webhook(old).verify(body as string, headers!)).not.toThrow();
    expect(() => new Webhook(e.secret).verify(body as string, headers!)).not.toThrow();
  });
});

describe('RenderWebhooks', () => {
  const token = (id: string, extra: Partial<TokenDoc> = {}): TokenDoc => ({
    _id: id,
    project: 't',
    movie: { mp4: 'intro', '*': 'card' },
    params: {},
    parallel: 1,
    routingkey: 'default',
    upload: [],
    createdAt: new Date().toISOString(),
    renderKeys: [],
    renders: {},
    metadata: { order: 7 },
    baseUrl: 'http://api.example',
    ...extra,
  });

  it('turns a token’s events into render.pending, render.processing and render.completed, sent in that order', async () => {
    const s = setup();
    const e = await s.endpoint(['render.*']);
    const hub = new RenderEvents();
    const listener = new RenderWebhooks(hub, s.service, s.store as unknown as WebhookStore, s.config);
    listener.onModuleInit();
    const tok = token('tokA', { renderKeys: ['key1'] });
    await s.store.tokens.insertOne(tok);
    await s.store.tokens.insertOne(token('tokB', { renderKeys: ['key1', 'key2'], metadata: undefined, baseUrl: undefined }));
    await s.store.tokens.insertOne(token('tokC', { renderKeys: ['key2'] }));

    await hub.emit({ type: 'token-created', token: tok });
    await hub.emit({ type: 'render-started', token: tok, format: 'webm', key: 'key1', run: '1abc' });
    await hub.emit({ type: 'render-started', token: tok, format: 'webm', key: 'key1', run: '1abc' }); // another API process says it too
    await hub.emit({ type: 'render-ended', key: 'key1', format: 'webm', project: 't', movie: 'card', run: '1abc', status: 'done', bytes: 1234 });
    await hub.emit({ type: 'output-requested', token: tok, format: 'webm', key: 'key1' });

    const ofA = s.messagesOf(e.id).filter((m) => m.orderKey === 'tokA');
    expect(ofA.map((m) => m.type)).toEqual(['render.pending', 'render.processing', 'render.completed']);
    const data = ofA.map((m) => JSON.parse(m.body).data);
    expect(data[0]).toEqual({
      token: 'tokA',
      project: 't',
      movie: { mp4: 'intro', '*': 'card' },
      formats: ['mp4', 'webm', 'gif', 'png', 'jpg', 'webp'],
      urls: Object.fromEntries(['mp4', 'webm', 'gif', 'png', 'jpg', 'webp'].map((f) => [f, `http://api.example/v2/get/tokA.${f}`])),
      metadata: { order: 7 },
    });
    expect(data[1]).toEqual({ token: 'tokA', project: 't', movie: 'card', format: 'webm', url: 'http://api.example/v2/get/tokA.webm', metadata: { order: 7 } });
    expect(data[2]).toEqual({ token: 'tokA', project: 't', movie: 'card', format: 'webm', url: 'http://api.example/v2/get/tokA.webm', bytes: 1234, metadata: { order: 7 } });
    // Every token that has the key is told; tokB has no base URL of its own: PUBLIC_URL.
    const ofB = s.messagesOf(e.id).filter((m) => m.orderKey === 'tokB');
    expect(ofB.map((m) => JSON.parse(m.body).data)).toEqual([{ token: 'tokB', project: 't', movie: 'card', format: 'webm', url: `${PUBLIC_URL}/v2/get/tokB.webm`, bytes: 1234, metadata: {} }]);
    expect(s.messagesOf(e.id).filter((m) => m.orderKey === 'tokC')).toHaveLength(0);

    // Delivered in order whatever order their jobs run in.
    for (const m of [...ofA].reverse()) await s.sender.handle({ message: m._id }).catch((err) => expect(err).toBeInstanceOf(RetryLater));
    for (const m of ofA) await s.sender.handle({ message: m._id }).catch(() => undefined);
    for (const m of ofA) await s.sender.handle({ message: m._id }).catch(() => undefined);
    expect(s.sent.map((r) => JSON.parse(r.body as string).type)).toEqual(['render.pending', 'render.processing', 'render.completed']);
  });

  it('says render.failed with the error; looks no token up when nobody listens', async () => {
    const s = setup();
    const hub = new RenderEvents();
    new RenderWebhooks(hub, s.service, s.store as unknown as WebhookStore, s.config).onModuleInit();
    await s.store.tokens.insertOne(token('tokF', { renderKeys: ['kf'] }));
    const find = jest.spyOn(s.store.tokens, 'find');
    await hub.emit({ type: 'render-ended', key: 'kf', format: 'mp4', project: 't', movie: 'intro', run: '2', status: 'failed', error: 'ffmpeg failed' });
    expect(find).not.toHaveBeenCalled();
    const e = await s.endpoint(['render.failed']);
    await hub.emit({ type: 'render-ended', key: 'kf', format: 'mp4', project: 't', movie: 'intro', run: '2', status: 'failed', error: 'ffmpeg failed' });
    expect(s.messagesOf(e.id).map((m) => JSON.parse(m.body))).toEqual([
      expect.objectContaining({ type: 'render.failed', data: { token: 'tokF', project: 't', movie: 'intro', format: 'mp4', url: 'http://api.example/v2/get/tokF.mp4', error: 'ffmpeg failed', metadata: { order: 7 } } }),
    ]);
  });
});

describe('WebhookEndpointsService', () => {
  it('creates an endpoint: the secret is returned once and stored sealed; listings never show it', async () => {
    const s = setup();
    const created = await s.endpointsService.create('t', 'mk_key', { url: 'https://hooks.example/a', events: ['render.*'], description: 'orders' });
    expect(s.access.authenticate).toHaveBeenCalledWith('t', 'mk_key');
    expect(created).toMatchObject({ id: expect.stringMatching(/^ep_/), url: 'https://hooks.example/a', events: ['render.*'], description: 'orders', secret: expect.stringMatching(/^whsec_/) });
    const stored = s.store.endpoints.docs.get(created.id)!;
    expect(SecretBox.isSealed(stored.secret)).toBe(true);
    expect(s.secrets.open(stored.secret)).toBe(created.secret);
    const listed = await s.endpointsService.list('t', 'mk_key');
    expect(JSON.stringify(listed)).not.toMatch(/secret|whsec_|enc:v1/);
    expect(JSON.stringify(await s.endpointsService.get('t', 'mk_key', created.id))).not.toMatch(/secret|whsec_|enc:v1/);
    await expect(s.endpointsService.get('other', 'mk_key', created.id)).rejects.toMatchObject({ kind: 'not_found' });
  });

  it('refuses host names that resolve to private addresses, and accepts names that do not resolve now', async () => {
    const s = setup();
    s.endpointsService.resolveHost = jest.fn(async (host: string) => {
      if (host === 'intranet.example') throw new PrivateAddressError(host, '10.0.0.5');
      throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
    });
    await expect(s.endpointsService.create('t', 'k', { url: 'https://intranet.example/hook' })).rejects.toMatchObject({ kind: 'bad_input', details: [{ field: 'url', message: expect.stringMatching(/10\.0\.0\.5/) }] });
    await expect(s.endpointsService.create('t', 'k', { url: 'https://later.example/hook' })).resolves.toMatchObject({ url: 'https://later.example/hook' });
    await expect(s.endpointsService.create('t', 'k', { url: 'http://127.0.0.1/hook' })).rejects.toMatchObject({ kind: 'bad_input' });
  });

  it('replays a message on a fresh schedule under a job id of its own', async () => {
    const s = setup();
    const e = await s.endpoint(['*']);
    await s.service.emit('t', 'render.pending', {}, { eventId: 'rp' });
    const [m] = s.messagesOf(e.id);
    await s.sender.handle({ message: m._id });
    const replay = await s.endpointsService.replay('t', 'k', e.id, m._id);
    expect(replay).toEqual({ message: m._id, status: 'pending', replay: 1 });
    expect(s.messagesOf(e.id)[0]).toMatchObject({ status: 'pending', attemptCount: 0, replays: 1 });
    expect(s.queue.enqueue).toHaveBeenLastCalledWith(WEBHOOK_QUEUE, JobName.SendWebhook, { message: m._id }, `${m._id}-replay-1`);
    await s.sender.handle({ message: m._id });
    expect(s.sent.map((r) => r.headers!['webhook-id'])).toEqual([m._id, m._id]);
    expect(s.messagesOf(e.id)[0].attempts).toHaveLength(2);
    await expect(s.endpointsService.replay('t', 'k', e.id, 'msg_unknown123')).rejects.toMatchObject({ kind: 'not_found' });
  });

  it('lists the delivery log newest first, filtered by status', async () => {
    const s = setup();
    const e = await s.endpoint(['*']);
    for (let i = 0; i < 3; i++) await s.service.emit('t', 'upload.started', { i }, { eventId: `log${i}` });
    await s.sender.handle({ message: s.messagesOf(e.id)[0]._id });
    const all = await s.endpointsService.deliveries('t', 'k', e.id, {});
    expect(all.messages.map((m) => m.id)).toEqual(s.messagesOf(e.id).map((m) => m._id).reverse());
    const delivered = await s.endpointsService.deliveries('t', 'k', e.id, { status: 'delivered', limit: '5' });
    expect(delivered.messages).toHaveLength(1);
    expect(delivered.messages[0]).toMatchObject({ status: 'delivered', attempts: [{ status: 200 }] });
    expect(JSON.stringify(all)).not.toMatch(/"body"|secret/);
  });
});
