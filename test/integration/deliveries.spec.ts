import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { type ApiApp, startApi } from '../helpers/api-app';
import { type HttpUploadServer, SECURED_PREFIX, startHttpUploadServer } from '../helpers/http-upload-server';
import { probeBuffer } from '../helpers/media';
import { until } from '../helpers/wait';
import { WebhookReceiver } from '../helpers/webhook-receiver';

// Upload tasks, connections and batches end to end: the real API (embedded node and Redis),
// a loopback upload server, callback and webhook receivers that verify what they get.
let api: ApiApp;
let up: HttpUploadServer;
let hooks: WebhookReceiver;
let callbacks: { url: string; seen: Array<{ path: string; msg: string | null }>; close(): Promise<void> };

beforeAll(async () => {
  up = await startHttpUploadServer({ token: 'sekret-token' });
  hooks = await WebhookReceiver.start();
  callbacks = await startCallbackServer();
  api = await startApi({
    env: { DELIVERY_ALLOW_PRIVATE: '1', UPLOAD_BACKOFF_MS: '200', BATCH_WEBHOOK_SIZE: '3', BATCH_WEBHOOK_DELAY_MS: '300', WEBHOOK_RETRY_SCHEDULE: '1,1,1' },
  });
}, 60_000);
afterAll(async () => {
  await api?.close();
  await Promise.all([up?.stop(), hooks?.close(), callbacks?.close()]);
});

const auth = () => ({ Authorization: `Bearer ${api.key}` });
const post = (body: unknown, route = 'render', project = 't') => request(api.url).post(`/v2/${route}/${project}`).set(auth()).send(body as object);
const progressOf = async (token: string) => (await request(api.url).get(`/v2/progress/${token}`).expect(200)).body;
const uploadDone = (token: string, index = 0) =>
  until(`upload ${index} of ${token} to finish`, async () => {
    const p = await progressOf(token);
    return ['done', 'failed'].includes(p.uploads?.[index]?.status) ? p.uploads[index] : undefined;
  });

async function fetchBytes(url: string): Promise<Buffer> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

describe('upload tasks', () => {
  it('a sync task waits for the first viewer, then uploads the stored output while it is served; onsuccess is called with ?msg=', async () => {
    const created = await post({
      movie: 'badge',
      params: { title: 'Upload' },
      upload: { destination: { type: 'http', url: `${up.url}/videos/upload.mp4`, method: 'PUT' }, onsuccess: `${callbacks.url}/ok` },
    }).expect(200);
    const { token } = created.body;
    expect(created.body.uploads).toEqual([
      { id: expect.stringMatching(/^upl_/), type: 'http', extension: 'mp4', async: false, destination: `PUT ${up.url}/videos/%7B%7Btitle%7D%7D-%7B%7Btoken%7D%7D.mp4`, status: 'pending', bytesSent: 0, attempts: 0 },
    ].map((u) => ({ ...u, destination: expect.stringMatching(/^PUT http:\/\/127\.0\.0\.1:\d+\/videos\//) })));

    // Nobody asked for the video: a sync task does nothing yet.
    await new Promise((r) => setTimeout(r, 1500));
    expect((await progressOf(token)).uploads[0].status).toBe('pending');
    expect(up.requests.filter((r) => r.path === '/videos/upload.mp4')).toHaveLength(0);

    await fetchBytes(created.body.urls.mp4); // streamed live (fragmented) to the first viewer
    const upload = await uploadDone(token);
    const video = await fetchBytes(created.body.urls.mp4); // the stored output: what was uploaded
    expect(upload).toMatchObject({ status: 'done', attempts: 1, size: video.length, bytesSent: video.length });
    const stored = up.stored('/videos/upload.mp4');
    expect(stored?.equals(video)).toBe(true);
    expect((await probeBuffer(stored!)).video).toMatchObject({ codec_name: 'h264', width: 320, height: 180 });
    expect(upload.result.url).toBe(`${up.url}/videos/upload.mp4?stored=1`); // the Location the server gave
    await until('the onsuccess callback', async () => callbacks.seen.find((c) => c.path === '/ok'));
    expect(callbacks.seen.find((c) => c.path === '/ok')!.msg).toBe(upload.result.url);
  });

  it('a saved connection carries the keys: never shown again, used by an async task that renders and uploads with no viewer', async () => {
    const saved = await request(api.url)
      .put('/v2/connections/t/inbox')
      .set(auth())
      .send({ type: 'http', url: `${up.url}${SECURED_PREFIX}inbox`, method: 'POST', headers: { Authorization: 'Bearer sekret-token' } })
      .expect(201);
    expect(saved.body).toMatchObject({ name: 'inbox', type: 'http', destination: `POST ${up.url}${SECURED_PREFIX}inbox` });
    const listed = await request(api.url).get('/v2/connections/t').set(auth()).expect(200);
    expect(listed.body.map((c: { name: string }) => c.name)).toEqual(['inbox']);
    for (const body of [saved.body, listed.body]) expect(JSON.stringify(body)).not.toMatch(/sekret|authorization/i);

    const created = await post({ movie: 'badge', params: { title: 'Async' }, upload: [{ async: true, destination: { connection: 'inbox', fields: { campaign: 'winter' } } }] }).expect(200);
    const upload = await uploadDone(created.body.token);
    expect(upload).toMatchObject({ status: 'done', destination: `POST ${up.url}${SECURED_PREFIX}inbox` });
    const received = up.requests.find((r) => r.path === `${SECURED_PREFIX}inbox` && r.status === 200)!;
    expect(received.form).toMatchObject({ fields: { campaign: 'winter' }, fileField: 'file', filename: `${created.body.token}.mp4`, fileType: 'video/mp4' });
    // Rendered in the background: the token's video is stored, and is what was uploaded.
    expect(up.stored(`${SECURED_PREFIX}inbox`)!.equals(await fetchBytes(created.body.urls.mp4))).toBe(true);
    expect(JSON.stringify(await progressOf(created.body.token))).not.toMatch(/sekret/);

    // A task may not point a connection elsewhere; an unknown connection is a 400 naming it.
    const hostile = await post({ movie: 'badge', upload: { destination: { connection: 'inbox', url: 'http://evil.example.com/' } } }).expect(400);
    expect(hostile.body.details).toEqual([{ field: 'upload.0.destination.url', message: expect.stringContaining('cannot be set over a http connection') }]);
    await request(api.url).delete('/v2/connections/t/inbox').set(auth()).expect(200);
    const gone = await post({ movie: 'badge', upload: { destination: { connection: 'inbox' } } }).expect(400);
    expect(gone.body.details[0]).toMatchObject({ field: 'upload.0.destination.connection' });
    await request(api.url).get('/v2/connections/t').expect(401);
  });

  it('a refusal (403) fails the task at once and calls onerror; a 500 is retried and then succeeds', async () => {
    up.answerNext(403);
    const refused = await post({ movie: 'badge', params: { title: 'Refused' }, upload: { async: true, destination: { type: 'http', url: `${up.url}/refused.mp4` }, onerror: `${callbacks.url}/err` } }).expect(200);
    const failed = await uploadDone(refused.body.token);
    expect(failed).toMatchObject({ status: 'failed', attempts: 1, error: expect.stringContaining('403') });
    await until('the onerror callback', async () => callbacks.seen.find((c) => c.path === '/err'));
    expect(callbacks.seen.find((c) => c.path === '/err')!.msg).toContain('403');

    up.answerNext(500);
    const retried = await post({ movie: 'badge', params: { title: 'Retried' }, upload: { async: true, destination: { type: 'http', url: `${up.url}/retried.mp4` } } }).expect(200);
    expect(await uploadDone(retried.body.token)).toMatchObject({ status: 'done', attempts: 2 });
    expect(up.stored('/retried.mp4')!.length).toBeGreaterThan(1000);
  });

  it('a bad connection is a 400 naming the field or the name, and nothing is saved', async () => {
    const bad = await request(api.url).put('/v2/connections/t/ftp').set(auth()).send({ type: 'ftp', host: 'ftp example', user: 'u' }).expect(400);
    expect(bad.body.details.map((d: { field: string }) => d.field)).toEqual(expect.arrayContaining(['host', 'password']));
    const badName = await request(api.url).put('/v2/connections/t/..%2Fx').set(auth()).send({ type: 'ftp', host: 'ftp.example.com', user: 'u', password: 'p' }).expect(400);
    expect(badName.body.details).toEqual([{ field: 'name', message: expect.any(String) }]);
    expect((await request(api.url).get('/v2/connections/t').set(auth()).expect(200)).body.map((c: { name: string }) => c.name)).not.toContain('ftp');
  });

  it('bad tasks are 400s naming the field, and nothing is stored', async () => {
    const res = await post({
      movie: 'badge',
      upload: [
        { destination: { type: 's3', bucket: 'b', filename: 'x.mp4' } },
        { destination: { type: 'http', url: `${up.url}/{{title}}` }, extension: 'exe' },
        { destination: { type: 'http', url: `${up.url}/x` }, extension: 'mp4', onsuccess: 'javascript:alert(1)' },
      ],
    }).expect(400);
    expect(res.body.details.map((d: { field: string }) => d.field)).toEqual(
      expect.arrayContaining(['upload.0.destination.bucket', 'upload.0.destination.aws_access_key_id', 'upload.1.extension', 'upload.2.onsuccess']),
    );
    expect(JSON.stringify(res.body)).not.toMatch(/stack|at Object/);
  });
});

describe('batches', () => {
  it('every item is rendered on the farm and arrives in exactly one signed webhook group; a bad item fails alone; identical params render once', async () => {
    const startedBefore = api.renders.counters.started;
    const requests = [
      ...['a', 'b', 'c', 'd', 'e'].map((key) => ({ key, title: `Item ${key}` })),
      { key: 'twin', title: 'Item a' }, // the same params as a
      { key: 'bad', params: { nope: 1 } },
    ];
    const created = await post({ movie: 'badge', requests, webhook_url: hooks.url, metadata: { campaign: 'spring' } }, 'batch').expect(201);
    expect(created.body).toMatchObject({ uuid: expect.stringMatching(/^[0-9a-f-]{36}$/), webhook_url: hooks.url, total: 7, queued: 6, webhook_secret: expect.stringMatching(/^whsec_/) });
    expect(created.body.failed).toEqual([{ key: 'bad', error: expect.stringContaining('unknown variable "nope"') }]);
    hooks.secret = created.body.webhook_secret;

    const { uuid } = created.body;
    const outputs = () => hooks.delivered.filter((d) => d.payload.type === 'batch.output' && d.payload.data.uuid === uuid);
    const keys = () => outputs().flatMap((d) => (d.payload.data.output as Array<{ key: string }>).map((o) => o.key));
    await hooks.waitFor('every key', () => keys().length >= 7, 120_000);
    await new Promise((r) => setTimeout(r, 800)); // nothing more may come
    expect(keys().sort()).toEqual(['a', 'b', 'bad', 'c', 'd', 'e', 'twin']);
    for (const d of outputs()) {
      expect(d.verified).toBe(true);
      expect((d.payload.data.output as unknown[]).length).toBeLessThanOrEqual(3); // BATCH_WEBHOOK_SIZE
    }
    expect(new Set(outputs().map((d) => d.id)).size).toBe(outputs().length);
    const all = outputs().flatMap((d) => d.payload.data.output as Array<{ key: string; public_url?: string; error?: string }>);
    expect(all.find((o) => o.key === 'bad')).toEqual({ key: 'bad', error: expect.stringContaining('nope') });
    const a = all.find((o) => o.key === 'a')!;
    expect(a.public_url).toMatch(new RegExp(`^${api.url}/v2/get/[A-Za-z0-9_-]{22}\\.mp4$`));
    const video = await fetchBytes(a.public_url!);
    expect((await probeBuffer(video)).video).toMatchObject({ codec_name: 'h264', width: 320, height: 180 });
    // a and twin share a render: six good items, five renders.
    expect(api.renders.counters.started - startedBefore).toBe(5);

    const status = await until('the batch to complete', async () => {
      const s = await request(api.url).get(`/v2/batch/${uuid}`).set(auth()).expect(200);
      return s.body.status === 'completed' ? s.body : undefined;
    });
    expect(status).toMatchObject({ uuid, total: 7, counts: { queued: 0, done: 6, failed: 1, sent: 7 } });
    expect(status.items.map((i: { key: string }) => i.key)).toEqual(requests.map((r) => r.key));
    await request(api.url).get(`/v2/batch/${uuid}`).expect(401);
  });

  it('refuses a batch that cannot start, naming the items', async () => {
    const res = await post({ movie: 'badge', requests: [{ key: 'x' }, { key: 'x' }] }, 'batch').expect(400);
    expect(res.body.details).toEqual([{ field: 'requests.1.key', message: expect.stringContaining('also the key of requests.0') }]);
    await post({ movie: 'nope', requests: [{ key: 'x' }] }, 'batch').expect(404);
  });
});

async function startCallbackServer() {
  const seen: Array<{ path: string; msg: string | null }> = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    seen.push({ path: url.pathname, msg: url.searchParams.get('msg') });
    res.writeHead(200).end('ok');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
