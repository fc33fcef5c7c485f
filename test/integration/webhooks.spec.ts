import { execFile, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import request from 'supertest';
import { Webhook } from 'standardwebhooks';
import { ProjectsService } from '../../src/projects/projects.service';
import { WebhooksService } from '../../src/webhooks/webhooks.service';
import { type ApiApp, startApi } from '../helpers/api-app';
import { until } from '../helpers/wait';
import { WebhookReceiver } from '../helpers/webhook-receiver';

// Webhooks end to end: the real API app (embedded store, Redis, render node), a loopback
// receiver that verifies every signature with the standardwebhooks package, and a short retry
// schedule (1, 1, 2, 2, 3 s after the first attempt, ±20 %) with a 1 s timeout.

let api: ApiApp;
let webhooks: WebhooksService;
let otherKey: string;
const receivers: WebhookReceiver[] = [];
/** Every answer of a GET on the webhook API: none may hold a secret. */
const answers: string[] = [];

beforeAll(async () => {
  api = await startApi({ env: { DELIVERY_ALLOW_PRIVATE: '1', WEBHOOK_RETRY_SCHEDULE: '1,1,2,2,3', WEBHOOK_TIMEOUT_MS: '1000' } });
  webhooks = api.app.get(WebhooksService);
  otherKey = (await api.app.get(ProjectsService).create('webhooks-other')).apiKey;
});
afterAll(async () => {
  await Promise.all(receivers.map((r) => r.close()));
  await api?.close();
});

const auth = (key = api.key) => ({ Authorization: `Bearer ${key}` });
const hooks = (suffix = '', project = 't') => `/v2/webhooks/${project}${suffix}`;

async function get(route: string, key = api.key) {
  const res = await request(api.url).get(route).set(auth(key));
  answers.push(res.text);
  return res;
}

async function receiver(): Promise<WebhookReceiver> {
  const r = await WebhookReceiver.start();
  receivers.push(r);
  return r;
}

/** Registers `r` as an endpoint of `t` and gives it its secret. */
async function register(r: WebhookReceiver, events: string[] = ['*']): Promise<{ id: string; secret: string }> {
  const res = await request(api.url).post(hooks()).set(auth()).send({ url: r.url, events }).expect(201);
  r.secret = res.body.secret;
  return res.body;
}

async function deliveries(endpoint: string, query = '') {
  const res = await get(hooks(`/${endpoint}/deliveries${query}`));
  expect(res.status).toBe(200);
  return res.body.messages as Array<{ id: string; type: string; status: string; attempts: Array<{ at: string; status?: number; error?: string; ms: number }>; attemptCount: number; lastError?: string }>;
}

const eventId = (label: string) => `${label}-${Math.random().toString(36).slice(2)}`;

describe('endpoints', () => {
  it('registers an endpoint (201, its whsec_ secret shown once), lists, reads, changes, rotates and deletes it', async () => {
    const created = await request(api.url).post(hooks()).set(auth()).send({ url: 'http://127.0.0.1:9/a', events: ['render.*', 'upload.completed'], description: 'orders' }).expect(201);
    expect(created.body).toMatchObject({ id: expect.stringMatching(/^ep_/), url: 'http://127.0.0.1:9/a', events: ['render.*', 'upload.completed'], description: 'orders' });
    expect(created.body.secret).toMatch(/^whsec_[A-Za-z0-9+/]{32}$/);
    expect(Buffer.from(created.body.secret.slice(6), 'base64')).toHaveLength(24);
    const { id, secret } = created.body;

    const listed = await get(hooks());
    expect(listed.status).toBe(200);
    expect(listed.body.endpoints.map((e: { id: string }) => e.id)).toContain(id);
    const one = await get(hooks(`/${id}`));
    expect(one.body).toEqual({ id, url: 'http://127.0.0.1:9/a', events: ['render.*', 'upload.completed'], description: 'orders', createdAt: expect.any(String), updatedAt: expect.any(String) });

    const patched = await request(api.url).patch(hooks(`/${id}`)).set('X-Api-Key', api.key).send({ url: 'http://127.0.0.1:9/b', events: ['*'], description: null }).expect(200);
    expect(patched.body).toMatchObject({ id, url: 'http://127.0.0.1:9/b', events: ['*'] });
    expect(patched.body.description).toBeUndefined();

    const rotated = await request(api.url).post(hooks(`/${id}/rotate-secret`)).set(auth()).expect(200);
    expect(rotated.body.secret).toMatch(/^whsec_/);
    expect(rotated.body.secret).not.toBe(secret);
    expect(Date.parse(rotated.body.previousSecretValidUntil)).toBeGreaterThan(Date.now() + 23 * 3600_000);

    // The secret is in no answer but the two above (nor in the store unsealed).
    expect((await get(hooks(`/${id}`))).text).not.toMatch(/whsec_|secret/);
    const db = fs.readFileSync(path.join(api.dataDir, 'db', 'webhook_endpoints.db'), 'utf8');
    expect(db).not.toContain(secret.slice(6));
    expect(db).not.toContain(rotated.body.secret.slice(6));

    await request(api.url).delete(hooks(`/${id}`)).set(auth()).expect(200, { deleted: id });
    await request(api.url).get(hooks(`/${id}`)).set(auth()).expect(404);
  });

  it.each([
    ['no url', {}, /url: Required/],
    ['an ftp URL', { url: 'ftp://127.0.0.1/x' }, /url is not allowed: only http and https/],
    ['credentials in the URL', { url: 'http://user:pw@127.0.0.1/x' }, /credentials/],
    ['a URL over 2048 characters', { url: `http://127.0.0.1/${'a'.repeat(2100)}` }, /url: at most 2048 characters/],
    ['a NUL in the URL', { url: 'http://127.0.0.1/a\u0000b' }, /U\+0000 \(NUL\)/],
    ['not a URL', { url: 'notaurl' }, /not a valid absolute URL/],
    ['an unknown event', { url: 'http://127.0.0.1/x', events: ['render.done'] }, /unknown event type "render\.done"; the valid ones are render\.pending, .*batch\.\*, renders\.\*, turntable\.\*, \*/],
    ['events that are not a list', { url: 'http://127.0.0.1/x', events: 'render.*' }, /events/],
    ['an empty event list', { url: 'http://127.0.0.1/x', events: [] }, /events must be a list/],
    ['an unknown field', { url: 'http://127.0.0.1/x', secret: 'whsec_mine' }, /unknown field: secret/],
    ['a NUL in the description', { url: 'http://127.0.0.1/x', description: 'a\u0000' }, /description contains U\+0000/],
    ['a huge description', { url: 'http://127.0.0.1/x', description: 'x'.repeat(100_000) }, /description: at most 500 characters/],
    ['a $ key', { url: 'http://127.0.0.1/x', $where: 1 }, /may not start with "\$"/],
    ['a dotted key', { url: 'http://127.0.0.1/x', 'a.b': 1 }, /may not contain "\."/],
    ['a body that is a list', [1, 2], /expected a JSON object|expected object/],
  ])('refuses %s with a 400 naming the field', async (_what, body, message) => {
    const res = await request(api.url).post(hooks()).set(auth()).send(body as object);
    expect(res.status).toBe(400);
    expect(res.body.message).toMatch(message);
  });

  it('refuses bad changes, queries and ids with 4xx, never 500', async () => {
    const { id } = (await request(api.url).post(hooks()).set(auth()).send({ url: 'http://127.0.0.1:9/c' }).expect(201)).body;
    await request(api.url).patch(hooks(`/${id}`)).set(auth()).send({}).expect(400);
    await request(api.url).patch(hooks(`/${id}`)).set(auth()).send({ events: ['*', 'nope'] }).expect(400);
    await request(api.url).patch(hooks(`/${id}`)).set(auth()).send({ disabled: 'yes' }).expect(400);
    await request(api.url).get(hooks(`/${id}/deliveries?status=lost`)).set(auth()).expect(400);
    await request(api.url).get(hooks(`/${id}/deliveries?limit=0`)).set(auth()).expect(400);
    await request(api.url).get(hooks(`/${id}/deliveries?limit=1e3`)).set(auth()).expect(400);
    await request(api.url).get(hooks(`/${id}/deliveries?status=a&status=b`)).set(auth()).expect(400);
    await request(api.url).get(hooks(`/${id}/deliveries?$where=1`)).set(auth()).expect(400);
    await request(api.url).post(hooks(`/${id}/rotate-secret`)).set(auth()).send({ oldSecretValidSeconds: -1 }).expect(400);
    await request(api.url).post(hooks(`/${id}/deliveries/msg_nope-nope-nope/replay`)).set(auth()).expect(404);
    await request(api.url).post(hooks(`/${id}/deliveries/${'x'.repeat(5000)}/replay`)).set(auth()).expect(404);
    await request(api.url).get(hooks(`/ep_${'x'.repeat(3000)}`)).set(auth()).expect(404);
    await request(api.url).get(hooks('/ep_unknown1234')).set(auth()).expect(404);
    await request(api.url).post(hooks()).set(auth()).set('Content-Type', 'text/plain').send('url=http://x').expect(415);
  });

  it('needs the project’s API key; another project sees none of its endpoints', async () => {
    const { id } = (await request(api.url).post(hooks()).set(auth()).send({ url: 'http://127.0.0.1:9/d' }).expect(201)).body;
    await request(api.url).get(hooks()).expect(401);
    await request(api.url).get(hooks()).set(auth('mk_wrong')).expect(401);
    await request(api.url).get(hooks()).set(auth(otherKey)).expect(403);
    await request(api.url).get(hooks(`/${id}`, 'webhooks-other')).set(auth(otherKey)).expect(404);
    await request(api.url).delete(hooks(`/${id}`, 'webhooks-other')).set(auth(otherKey)).expect(404);
    const theirs = await get(hooks('', 'webhooks-other'), otherKey);
    expect(theirs.body).toEqual({ endpoints: [] });
  });
});

describe('a render’s events', () => {
  it('sends render.pending, render.processing and render.completed in order, signed, with the token, format, URL and metadata', async () => {
    const r = await receiver();
    await register(r, ['render.*']);
    const created = await request(api.url)
      .post('/v2/render/t')
      .set(auth())
      .send({ movie: 'colors', params: { label: `hooks ${Date.now()}` }, metadata: { order: 42, customer: 'ada' } })
      .expect(200);
    const token: string = created.body.token;
    await request(api.url).get(`/v2/get/${token}.mp4`).expect(200);
    const ofToken = () => r.delivered.filter((m) => m.payload.data.token === token);
    await r.waitFor('three events of the token', () => ofToken().length >= 3, 60_000);
    await new Promise((res) => setTimeout(res, 500)); // nothing more comes
    const got = ofToken();
    expect(got.map((m) => m.payload.type)).toEqual(['render.pending', 'render.processing', 'render.completed']);
    for (const m of got) {
      expect(m.verified).toBe(true);
      expect(m.contentType).toBe('application/json');
      expect(m.id).toMatch(/^msg_[A-Za-z0-9_-]{43}$/);
      expect(m.signature).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
      expect(Math.abs(Number(m.timestamp) - Date.now() / 1000)).toBeLessThan(60);
      expect(Date.parse(m.payload.timestamp)).toBeGreaterThan(0);
      expect(m.payload.data).toMatchObject({ token, project: 't', metadata: { order: 42, customer: 'ada' } });
    }
    expect(new Set(got.map((m) => m.id)).size).toBe(3);
    expect(got[0].payload.data).toMatchObject({ movie: 'colors', formats: ['mp4', 'webm', 'gif', 'png', 'jpg', 'webp'], urls: { mp4: `${api.url}/v2/get/${token}.mp4` } });
    expect(got[1].payload.data).toMatchObject({ movie: 'colors', format: 'mp4', url: `${api.url}/v2/get/${token}.mp4` });
    expect(got[2].payload.data).toMatchObject({ movie: 'colors', format: 'mp4', url: `${api.url}/v2/get/${token}.mp4`, bytes: expect.any(Number) });
    expect(got[2].payload.data.bytes).toBeGreaterThan(1000);
  });
});

describe('delivery', () => {
  it('a receiver down (connection refused) for a few seconds, then up, gets every message (a render’s too), in order per token, none twice', async () => {
    const r = await receiver();
    const { id: endpoint } = await register(r);
    await r.down();
    const keys = ['tok-a', 'tok-b', 'tok-c'];
    const types = ['render.pending', 'render.processing', 'render.completed'] as const;
    const ids = keys.map((k) => types.map((t) => `${k}:${t}:${eventId('outage')}`));
    for (let i = 0; i < types.length; i++) {
      for (const [k, key] of keys.entries()) {
        await webhooks.emit('t', types[i], { token: key, step: i }, { eventId: ids[k][i], orderKey: key });
        // The same event said again (another API process): still one message.
        await webhooks.emit('t', types[i], { token: key, step: i }, { eventId: ids[k][i], orderKey: key });
      }
    }
    // And a real render's three events.
    const started = Date.now();
    const { token } = (await request(api.url).post('/v2/render/t').set(auth()).send({ movie: 'colors', params: { label: `outage ${started}` } }).expect(200)).body;
    await request(api.url).get(`/v2/get/${token}.png`).expect(200);
    await new Promise((res) => setTimeout(res, Math.max(0, started + 3000 - Date.now())));
    const failing = await until('the render’s three messages', async () => {
      const pending = await deliveries(endpoint, '?status=pending');
      return pending.length === 12 ? pending : undefined;
    });
    expect(failing.filter((m) => m.attemptCount > 0).length).toBe(4); // the first of each key: later ones wait for it
    expect(failing.find((m) => m.attemptCount > 0)!.attempts[0].error).toMatch(/refused/);
    await r.up();
    await r.waitFor('twelve deliveries', () => r.delivered.length >= 12, 30_000);
    await new Promise((res) => setTimeout(res, 1000));
    expect(r.delivered).toHaveLength(12);
    expect(new Set(r.delivered.map((m) => m.id)).size).toBe(12);
    for (const key of keys) {
      expect(r.delivered.filter((m) => m.payload.data.token === key).map((m) => m.payload.data.step)).toEqual([0, 1, 2]);
    }
    expect(r.delivered.filter((m) => m.payload.data.token === token).map((m) => m.payload.type)).toEqual(['render.pending', 'render.processing', 'render.completed']);
    expect(r.delivered.every((m) => m.verified)).toBe(true);
    const log = await deliveries(endpoint);
    expect(log.every((m) => m.status === 'delivered')).toBe(true);
  });

  it('records every attempt in the delivery log: 500 twice, then delivered', async () => {
    const r = await receiver();
    r.respond({ kind: 'status', status: 500 }, { kind: 'status', status: 500 });
    const { id: endpoint } = await register(r);
    await webhooks.emit('t', 'upload.completed', { n: 1 }, { eventId: eventId('500') });
    await r.waitFor('delivery', () => r.delivered.length === 1);
    const [message] = await until('the log says delivered', async () => {
      const log = await deliveries(endpoint);
      return log[0]?.status === 'delivered' ? log : undefined;
    });
    expect(message).toMatchObject({ type: 'upload.completed', status: 'delivered', attemptCount: 3 });
    expect(message.attempts.map((a) => a.status)).toEqual([500, 500, 200]);
    expect(message.attempts[0].error).toMatch(/answered 500/);
    for (const a of message.attempts) {
      expect(Date.parse(a.at)).toBeGreaterThan(0);
      expect(a.ms).toBeGreaterThanOrEqual(0);
    }
    // 1 s ±20 % after the first, 1 s ±20 % after the second.
    const gaps = message.attempts.slice(1).map((a, i) => Date.parse(a.at) - Date.parse(message.attempts[i].at));
    for (const gap of gaps) expect(gap).toBeGreaterThanOrEqual(750);
    // The same webhook-id on every attempt; each attempt's own timestamp.
    expect(new Set(r.requests.map((q) => q.id)).size).toBe(1);
    expect(r.requests.every((q) => q.verified)).toBe(true);
  });

  it('waits as long as the receiver’s Retry-After says (seconds or an HTTP date)', async () => {
    const r = await receiver();
    r.respond({ kind: 'status', status: 503, retryAfter: '3' }, { kind: 'status', status: 429, retryAfter: new Date(Date.now() + 6000).toUTCString() });
    const { id: endpoint } = await register(r);
    await webhooks.emit('t', 'batch.completed', { n: 1 }, { eventId: eventId('retry-after') });
    await r.waitFor('delivery', () => r.delivered.length === 1, 30_000);
    const [first, second, third] = r.requests.map((q) => q.at);
    expect(second - first).toBeGreaterThanOrEqual(2900); // the schedule alone says 1 s ±20 %
    expect(third - second).toBeGreaterThanOrEqual(1500); // until the date given (whole seconds), not the schedule's 1 s
    const [message] = await deliveries(endpoint);
    expect(message.attempts.map((a) => a.status)).toEqual([503, 429, 200]);
  });

  it('counts a 302 as a failure and never follows it', async () => {
    const target = await receiver();
    const r = await receiver();
    r.respond({ kind: 'status', status: 302, location: target.url }, { kind: 'status', status: 301, location: target.url });
    const { id: endpoint } = await register(r);
    await webhooks.emit('t', 'render.failed', { n: 1 }, { eventId: eventId('302') });
    await r.waitFor('delivery', () => r.delivered.length === 1);
    expect(target.requests).toHaveLength(0);
    const [message] = await until('the log', async () => ((await deliveries(endpoint))[0]?.status === 'delivered' ? deliveries(endpoint) : undefined));
    expect(message.attempts.map((a) => a.status)).toEqual([302, 301, 200]);
    expect(message.attempts[0].error).toMatch(/redirect \(302\) not followed/);
  });

  it('times out a receiver that hangs, and tries again', async () => {
    const r = await receiver();
    r.respond({ kind: 'hang' });
    const { id: endpoint } = await register(r);
    await webhooks.emit('t', 'render.pending', { n: 1 }, { eventId: eventId('hang') });
    await r.waitFor('delivery', () => r.delivered.length === 1, 20_000);
    const [message] = await until('the log', async () => ((await deliveries(endpoint))[0]?.status === 'delivered' ? deliveries(endpoint) : undefined));
    expect(message.attempts).toHaveLength(2);
    expect(message.attempts[0]).toMatchObject({ error: 'no answer within 1 s' });
    expect(message.attempts[0].status).toBeUndefined();
    expect(message.attempts[0].ms).toBeGreaterThanOrEqual(950);
    expect(message.attempts[0].ms).toBeLessThan(3000);
  });

  it('disables the endpoint on 410: its waiting and later events are not sent until PATCH re-enables it', async () => {
    const r = await receiver();
    r.respond({ kind: 'status', status: 410 });
    const { id: endpoint } = await register(r);
    await webhooks.emit('t', 'render.pending', { n: 1 }, { eventId: eventId('gone'), orderKey: 'gone-1' });
    await webhooks.emit('t', 'render.processing', { n: 2 }, { eventId: eventId('gone'), orderKey: 'gone-1' });
    const disabled = await until('disabled', async () => ((await get(hooks(`/${endpoint}`))).body.disabled ? (await get(hooks(`/${endpoint}`))).body : undefined));
    expect(disabled.disabled.reason).toMatch(/410 Gone/);
    await webhooks.emit('t', 'render.completed', { n: 3 }, { eventId: eventId('gone'), orderKey: 'gone-1' });
    await new Promise((res) => setTimeout(res, 2000));
    expect(r.requests).toHaveLength(1);
    const log = await deliveries(endpoint);
    expect(log.map((m) => m.status)).toEqual(['failed', 'failed']); // the waiting one too; the later one was never made
    expect(log[1].attempts.map((a) => a.status)).toEqual([410]);

    await request(api.url).patch(hooks(`/${endpoint}`)).set(auth()).send({ disabled: false }).expect(200);
    expect((await get(hooks(`/${endpoint}`))).body.disabled).toBeUndefined();
    await webhooks.emit('t', 'render.completed', { n: 4 }, { eventId: eventId('gone') });
    await r.waitFor('a delivery after re-enabling', () => r.delivered.length === 1);
    expect(r.delivered[0].payload.data).toEqual({ n: 4 });
  });

  it('replays a message with the same webhook-id, newly signed', async () => {
    const r = await receiver();
    const { id: endpoint } = await register(r);
    await webhooks.emit('t', 'upload.started', { n: 1 }, { eventId: eventId('replay') });
    await r.waitFor('delivery', () => r.delivered.length === 1);
    const [message] = await until('the log', async () => ((await deliveries(endpoint))[0]?.status === 'delivered' ? deliveries(endpoint) : undefined));
    const replayed = await request(api.url).post(hooks(`/${endpoint}/deliveries/${message.id}/replay`)).set(auth()).expect(202);
    expect(replayed.body).toEqual({ message: message.id, status: 'pending', replay: 1 });
    await r.waitFor('the replay', () => r.delivered.length === 2);
    expect(r.delivered[1].id).toBe(message.id);
    expect(r.delivered[1].body).toBe(r.delivered[0].body);
    expect(r.delivered[1].verified).toBe(true);
    const [after] = await until('the log', async () => ((await deliveries(endpoint))[0]?.status === 'delivered' ? deliveries(endpoint) : undefined));
    expect(after).toMatchObject({ id: message.id, replays: 1, status: 'delivered' });
    expect(after.attempts).toHaveLength(2);
  });

  it('signs with both secrets while a rotation settles, so receivers with either verify', async () => {
    const r = await receiver();
    const { id: endpoint, secret: old } = await register(r);
    const rotated = (await request(api.url).post(hooks(`/${endpoint}/rotate-secret`)).set(auth()).send({ oldSecretValidSeconds: 60 }).expect(200)).body;
    await webhooks.emit('t', 'render.pending', { n: 1 }, { eventId: eventId('rotate') });
    await r.waitFor('delivery', () => r.delivered.length === 1);
    const m = r.delivered[0];
    const headers = { 'webhook-id': m.id, 'webhook-timestamp': m.timestamp, 'webhook-signature': m.signature };
    expect(m.signature.split(' ')).toHaveLength(2);
    expect(() => new Webhook(old).verify(m.body, headers)).not.toThrow();
    expect(() => new Webhook(rotated.secret).verify(m.body, headers)).not.toThrow();
    // Without an overlap, only the new secret signs.
    const again = (await request(api.url).post(hooks(`/${endpoint}/rotate-secret`)).set(auth()).send({ oldSecretValidSeconds: 0 }).expect(200)).body;
    r.secret = again.secret;
    await webhooks.emit('t', 'render.pending', { n: 2 }, { eventId: eventId('rotate') });
    await r.waitFor('delivery', () => r.delivered.length === 2);
    expect(r.delivered[1].signature.split(' ')).toHaveLength(1);
    expect(r.delivered[1].verified).toBe(true);
  });

  it('sends only to endpoints that subscribe to the event', async () => {
    const renders = await receiver();
    const uploads = await receiver();
    await register(renders, ['render.*']);
    await register(uploads, ['upload.completed', 'upload.failed']);
    await webhooks.emit('t', 'upload.completed', { n: 1 }, { eventId: eventId('subs') });
    await webhooks.emit('t', 'render.completed', { n: 2 }, { eventId: eventId('subs') });
    await webhooks.emit('t', 'upload.started', { n: 3 }, { eventId: eventId('subs') });
    await renders.waitFor('render event', () => renders.delivered.length === 1);
    await uploads.waitFor('upload event', () => uploads.delivered.length === 1);
    await new Promise((res) => setTimeout(res, 1000));
    expect(renders.delivered.map((m) => m.payload.type)).toEqual(['render.completed']);
    expect(uploads.delivered.map((m) => m.payload.type)).toEqual(['upload.completed']);
  });

  it('sends a direct message (a batch’s own URL) signed with the secret it was given, in order', async () => {
    const r = await receiver();
    r.secret = webhooks.newSecret();
    r.respond({ kind: 'status', status: 500 });
    for (let i = 0; i < 3; i++) await webhooks.sendDirect('t', { url: r.url, secret: r.secret }, 'batch.output', { i }, { eventId: eventId('direct'), orderKey: 'batch-1' });
    await r.waitFor('three deliveries', () => r.delivered.length === 3, 20_000);
    expect(r.delivered.map((m) => m.payload.data.i)).toEqual([0, 1, 2]);
    expect(r.delivered.every((m) => m.verified)).toBe(true);
    await expect(webhooks.sendDirect('t', { url: 'ftp://x', secret: r.secret }, 'batch.output', {}, { eventId: 'x' })).rejects.toThrow(/only http and https/);
    await expect(webhooks.sendDirect('t', { url: r.url, secret: 'nope' }, 'batch.output', {}, { eventId: 'x' })).rejects.toThrow(/whsec_/);
  });

  it('never shows a secret in any GET answer', () => {
    expect(answers.length).toBeGreaterThan(10);
    for (const text of answers) expect(text).not.toMatch(/whsec_|enc:v1:|"secret"/);
  });
});

describe('private addresses', () => {
  let strict: ApiApp;
  beforeAll(async () => {
    strict = await startApi({ env: { DELIVERY_ALLOW_PRIVATE: '0', MEDIA_ALLOW_PRIVATE: '0' } });
  });
  afterAll(() => strict?.close());

  it.each(['http://127.0.0.1:8080/hook', 'http://localhost/hook', 'http://[::1]/hook', 'http://10.1.2.3/hook', 'http://169.254.169.254/latest', 'http://[::ffff:192.168.0.1]/x', 'http://api.localhost/x'])(
    'refuses %s with a 400 naming url',
    async (url) => {
      const res = await request(strict.url).post('/v2/webhooks/t').set({ Authorization: `Bearer ${strict.key}` }).send({ url });
      expect(res.status).toBe(400);
      expect(res.body.details).toEqual([expect.objectContaining({ field: 'url' })]);
    },
  );

  it('accepts a public address', async () => {
    await request(strict.url).post('/v2/webhooks/t').set({ Authorization: `Bearer ${strict.key}` }).send({ url: 'https://93.184.215.14/hook' }).expect(201);
  });
});

describe('montage webhooks (the CLI, against the running API)', () => {
  const root = path.join(__dirname, '..', '..');
  const BIN = path.join(root, 'bin', 'montage.js');

  beforeAll(() => {
    // The CLI runs from dist/: built when it is older than these sources.
    const built = path.join(root, 'dist', 'src', 'cli', 'webhooks.commands.js');
    const sources = ['src/cli/webhooks.commands.ts', 'src/cli/api-client.ts', 'src/cli/main.ts'].map((f) => fs.statSync(path.join(root, f)).mtimeMs);
    if (!fs.existsSync(built) || fs.statSync(built).mtimeMs < Math.max(...sources)) {
      spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'ignore', timeout: 300_000 });
    }
  }, 300_000);

  async function montage(args: string[], env: Record<string, string> = {}) {
    try {
      const { stdout, stderr } = await promisify(execFile)('node', [BIN, 'webhooks', ...args], { env: { ...process.env, MONTAGE_API_URL: api.url, MONTAGE_API_KEY: api.key, ...env }, timeout: 60_000 });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  }

  it('adds, lists, shows the log of, replays and removes an endpoint; exits 2 for bad input and 1 when the API is unreachable', async () => {
    const r = await receiver();
    const added = await montage(['add', 't', r.url, '--events', 'upload.*,batch.completed', '--description', 'from the CLI']);
    expect(added.code).toBe(0);
    const id = /^id:\s+(ep_\S+)$/m.exec(added.stdout)![1];
    r.secret = /^secret:\s+(whsec_\S+)$/m.exec(added.stdout)![1];
    expect(added.stderr).toMatch(/shown once/);

    const listed = await montage(['list', 't']);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain(`${id}  ${r.url}  upload.*,batch.completed`);
    expect(listed.stdout).not.toMatch(/whsec_/);

    await webhooks.emit('t', 'upload.completed', { n: 1 }, { eventId: eventId('cli') });
    await r.waitFor('delivery', () => r.delivered.length === 1);
    const log = await until('the log', async () => {
      const l = await montage(['log', 't', id]);
      return /delivered/.test(l.stdout) ? l : undefined;
    });
    expect(log.code).toBe(0);
    expect(log.stdout).toMatch(new RegExp(`^${r.delivered[0].id}  upload\\.completed  delivered  1 attempt  .*200`, 'm'));
    const json = await montage(['log', 't', id, '--json', '--status', 'delivered', '--limit', '5']);
    expect(JSON.parse(json.stdout).messages[0]).toMatchObject({ id: r.delivered[0].id, status: 'delivered' });

    const replayed = await montage(['replay', 't', id, r.delivered[0].id]);
    expect(replayed.code).toBe(0);
    await r.waitFor('the replay', () => r.delivered.length === 2);

    const rotated = await montage(['rotate-secret', 't', id]);
    expect(rotated.stdout).toMatch(/^secret:\s+whsec_/m);

    const bad = await montage(['add', 't', 'ftp://127.0.0.1/x']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/error: url is not allowed: only http and https/);
    expect((await montage(['remove', 't', 'ep_doesnotexist'])).code).toBe(2);
    expect((await montage(['list', 't'], { MONTAGE_API_KEY: 'mk_wrong' })).code).toBe(2);
    const away = await montage(['list', 't', '--api', 'http://127.0.0.1:9']);
    expect(away.code).toBe(1);
    expect(away.stderr).toMatch(/cannot reach the Montage API at http:\/\/127\.0\.0\.1:9/);

    expect((await montage(['remove', 't', id])).code).toBe(0);
    expect((await montage(['list', 't'])).stdout).not.toContain(id);
  });
});
