import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { probeBuffer } from '../helpers/media';
import { type ApiProc, eventually, killGroup, type Proc, type RedisProc, startApiProcess, startNodeProcess, startRedis } from '../helpers/processes';
import { WebhookReceiver } from '../helpers/webhook-receiver';

// VNTANA's renders API against Montage with real components: the built API process, one
// render node (Debian's Blender, CPU), redis-server, local storage, a GLB written by
// @gltf-transform/core, and a webhook receiver that verifies every signature with the
// `standardwebhooks` package. Stills and turntables are tiny (48×48, 6 images).

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'montage-farm-products-'));
const MODEL = path.join(work, 'chair.glb');
// These tests poll every 50 ms: no requests-per-minute limit (rate-limits.spec.ts covers the farm's).
const ENV = { BLENDER_THREADS: '1', DELIVERY_ALLOW_PRIVATE: '1', WEBHOOK_RETRY_SCHEDULE: '1,1,2', WEBHOOK_TIMEOUT_MS: '2000', RATE_LIMIT_REQUESTS_PER_MINUTE: '0' };

let redis: RedisProc;
let api: ApiProc;
let node: Proc;
let receiver: WebhookReceiver;
let key: string;

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

async function call(method: string, route: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: Json }> {
  const res = await fetch(`${api.url}${route}`, {
    method,
    headers: { 'X-AUTH-TOKEN': `Bearer ${key}`, ...(body ? { 'content-type': 'application/json' } : {}), ...headers },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, json: (await res.json()) as Json };
}

/** The upload flow: the signed form with the fields, then the file; confirmed. */
async function uploadFile(filename: string, bytes: Buffer): Promise<Json> {
  const target = (await call('POST', '/v1/farm/upload', { filename })).json;
  const form = new FormData();
  for (const [k, v] of Object.entries(target.fields as Record<string, string>)) form.append(k, v);
  form.append('file', new Blob([bytes]), path.basename(filename));
  expect((await fetch(target.url, { method: 'POST', body: form })).status).toBe(204);
  const confirmed = await call('POST', '/v1/farm/confirm-upload', { filename: target.filename });
  expect(confirmed.status).toBe(200);
  return confirmed.json;
}

async function uploadModel(): Promise<string> {
  const confirmed = await uploadFile('products/chair.glb', fs.readFileSync(MODEL));
  expect(confirmed).toMatchObject({ kind: 'model', model: { container: 'glb' } });
  return confirmed.upload_id as string;
}

async function attachmentsWhen(uuid: string, ready: (types: string[]) => boolean): Promise<Json[]> {
  return eventually(
    'the attachments',
    async () => {
      const { json } = await call('GET', `/v1/products/${uuid}/attachments`);
      const list = json.response.attachments as Json[];
      return ready(list.map((a) => a.type as string)) ? list : undefined;
    },
    300_000,
  );
}

/** A signed attachment URL, fetched with no key at all. */
async function fetchSigned(url: string): Promise<Buffer> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

beforeAll(async () => {
  execFileSync(process.execPath, [path.join(__dirname, '..', 'helpers', 'make-glb.mjs'), MODEL, '#1a4fd6']);
  redis = await startRedis();
  api = await startApiProcess({ ...ENV, EMBEDDED_RENDER_NODE: '0', REDIS_URL: redis.url });
  node = startNodeProcess(api.dataDir, redis.url, ENV);
  key = api.key();
  receiver = await WebhookReceiver.start();
  const hook = await fetch(`${api.url}/v2/webhooks/t`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ url: receiver.url, events: ['renders.*', 'turntable.*'] }),
  });
  expect(hook.status).toBe(201);
  receiver.secret = ((await hook.json()) as Json).secret;
  await eventually('a render node with Blender', async () => {
    const { nodes } = (await (await fetch(`${api.url}/v2/nodes`)).json()) as { nodes: Array<{ engines: string[] }> };
    return nodes.some((n) => n.engines.includes('blender')) ? true : undefined;
  }, 60_000);
}, 120_000);

afterAll(async () => {
  for (const p of [node, api]) if (p) killGroup(p.pid);
  await receiver?.close();
  await redis?.stop();
  fs.rmSync(work, { recursive: true, force: true });
});

describe("VNTANA's product renders", () => {
  let uuid: string;

  it('refuses a model that is not one, an unknown product, and bad fields, naming them', async () => {
    uuid = (await call('POST', '/v1/products', { name: 'Chair', description: 'oak', upload_id: await uploadModel() })).json.response.uuid;
    expect(uuid).toEqual(expect.any(String));
    const request = { productUuids: [uuid], imageWidth: 48, imageHeight: 48, imageFormat: 'PNG', turntable: { includeGif: true, imageCount: 6, frameRate: 6, width: 48, height: 48 } };
    const unknown = await call('POST', '/v1/products/renders', { ...request, productUuids: ['1b4e28ba-2fa1-41d2-883f-0016d3cca427'] });
    expect(unknown.status).toBe(404);
    const malformed = await call('POST', '/v1/products/renders', { ...request, productUuids: ['../x'] });
    expect(malformed.status).toBe(400);
    expect(malformed.json.details).toEqual([{ field: 'productUuids[0]', message: 'not a uuid' }]);
    // An upload the project does not have, and one that is not a model.
    const missing = await call('POST', '/v1/products', { name: 'x', upload_id: 'file_000000000000000000000000' });
    expect(missing.status).toBe(404);
    const notes = await uploadFile('products/notes.txt', Buffer.from('not a model'));
    expect(notes.kind).toBe('asset');
    const notModel = await call('POST', '/v1/products', { name: 'x', upload_id: notes.upload_id });
    expect(notModel.status).toBeGreaterThanOrEqual(400);
    expect(notModel.status).toBeLessThan(500);
    expect(notModel.json.message).toMatch(/model|glTF|GLB/i);
    const bad = await call('POST', '/v1/products/renders', { ...request, imageFormat: 'BMP' });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.json.details)).toContain('imageFormat');
    const noKey = await call('POST', '/v1/products/renders', request, { 'X-AUTH-TOKEN': 'Bearer nope' });
    expect(noKey.status).toBe(401);
  });

  it('renders stills, a turntable MP4 and its GIF, downloadable through signed URLs, with signed renders.* and turntable.* webhooks', async () => {
    const answer = await call('POST', '/v1/products/renders', {
      productUuids: [uuid],
      imageWidth: 48,
      imageHeight: 48,
      imageFormat: 'PNG',
      turntable: { includeGif: true, imageCount: 6, frameRate: 6, width: 48, height: 48 },
    });
    expect(answer).toEqual({ status: 200, json: { success: true, errors: [], response: { uuids: [uuid], errors: null } } });
    const list = await attachmentsWhen(uuid, (t) => t.includes('TURNTABLE') && t.includes('TURNTABLE_GIF') && t.filter((x) => x === 'RENDER').length === 6);

    // Stills: six views at 48×48 showing the blue model (its centre) on a light backdrop (a corner), not all alike.
    const stills = list.filter((a) => a.type === 'RENDER');
    expect(stills.map((a) => a.view).sort()).toEqual(['back', 'front', 'front-right', 'left', 'right', 'top']);
    const seen = new Set<string>();
    for (const still of stills) {
      const { data, info } = await sharp(await fetchSigned(still.url)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      expect([info.width, info.height]).toEqual([48, 48]);
      const at = (x: number, y: number) => [...data.subarray((y * 48 + x) * 3, (y * 48 + x) * 3 + 3)];
      const [r, g, b] = at(24, 24);
      expect(b).toBeGreaterThan(r + 20); // the model is blue
      expect(b).toBeGreaterThan(g);
      const corner = at(1, 1);
      expect(Math.min(...corner)).toBeGreaterThan(100); // the backdrop is light and neutral
      seen.add(data.toString('base64'));
    }
    expect(seen.size).toBeGreaterThan(3);

    // The turntable: an H.264 MP4 of 6 frames at 6 fps, and a GIF of 6 frames.
    const mp4 = await probeBuffer(await fetchSigned(list.find((a) => a.type === 'TURNTABLE')!.url));
    expect(mp4.video).toMatchObject({ codec_name: 'h264', width: 48, height: 48, nb_read_frames: '6' });
    expect(mp4.durationSec).toBeCloseTo(1, 1);
    const gif = await probeBuffer(await fetchSigned(list.find((a) => a.type === 'TURNTABLE_GIF')!.url));
    expect(gif.video).toMatchObject({ codec_name: 'gif', nb_read_frames: '6' });

    // Webhooks: each family pending → processing → completed, every one signed and verified, with
    // VNTANA's payload as the whole body (their receivers read body.event and body.product.uuid).
    const eventOf = (e: { payload: Json }) => e.payload.event as string;
    const events = await eventually('the completed webhooks', () => {
      const types = receiver.delivered.map(eventOf);
      return types.includes('renders.completed') && types.includes('turntable.completed') ? receiver.delivered : undefined;
    }, 60_000);
    expect(events.every((e) => e.verified)).toBe(true);
    for (const family of ['renders', 'turntable']) {
      const order = events.map(eventOf).filter((t) => t.startsWith(`${family}.`));
      expect(order).toEqual([`${family}.pending`, `${family}.processing`, `${family}.completed`]);
    }
    const completed = events.find((e) => eventOf(e) === 'renders.completed')!.payload;
    expect(completed).toEqual({
      event: 'renders.completed',
      organization: { uuid: 't' },
      product: { uuid, name: 'Chair', description: 'oak', status: 'LIVE_PUBLIC', asset: { assetOriginalName: 'chair.glb', assetOriginalSize: fs.statSync(MODEL).size, generationRequestUuid: expect.any(String) } },
      client: { uuid: 't' },
    });
  }, 400_000);

  it('replaces the previous renders: a new request without a GIF leaves none, and the old files are gone', async () => {
    const before = (await call('GET', `/v1/products/${uuid}/attachments`)).json.response.attachments as Json[];
    const oldGif = before.find((a) => a.type === 'TURNTABLE_GIF')!;
    const answer = await call('POST', '/v1/products/renders', {
      productUuids: [uuid],
      imageWidth: 40,
      imageHeight: 32,
      imageFormat: 'JPG',
      turntable: { includeGif: false, imageCount: 4, frameRate: 4, width: 32, height: 32 },
    });
    expect(answer.status).toBe(200);
    const list = await attachmentsWhen(uuid, (t) => !t.includes('TURNTABLE_GIF') && t.includes('TURNTABLE'));
    const stills = list.filter((a) => a.type === 'RENDER');
    expect(stills).toHaveLength(6);
    expect(stills.every((a) => a.format === 'JPG' && a.width === 40 && a.height === 32)).toBe(true);
    const meta = await sharp(await fetchSigned(stills[0].url)).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['jpeg', 40, 32]);
    const mp4 = await probeBuffer(await fetchSigned(list.find((a) => a.type === 'TURNTABLE')!.url));
    expect(mp4.video).toMatchObject({ width: 32, height: 32, nb_read_frames: '4' });
    expect((await fetch(oldGif.url)).status).toBe(404);
    // No farm frame is left in storage: stills were copied to keys of their own, turntable frames
    // went after their encode, and the first request's farm jobs went once both families were replaced.
    const frames = () => fs.readdirSync(path.join(api.dataDir, 'outputs')).filter((n) => n.startsWith('fr-'));
    await eventually('the farm frames removed', () => (frames().length === 0 ? true : undefined), 30_000);
    // The attachments still read (they never depended on a farm job).
    expect((await fetchSigned(stills[1].url)).length).toBeGreaterThan(0);
    // A signed URL edited, or past its expiry, is refused.
    const edited = new URL(stills[0].url);
    edited.searchParams.set('expires', String(Number(edited.searchParams.get('expires')) + 60));
    expect((await fetch(edited)).status).toBe(403);
  }, 400_000);

  it('refuses a .gltf whose buffers are files beside it (422, naming them)', async () => {
    const gltf = { asset: { version: '2.0' }, meshes: [{ primitives: [{ attributes: { POSITION: 0 } }] }], buffers: [{ uri: 'chair.bin', byteLength: 36 }], images: [{ uri: 'tex/wood.png' }] };
    const confirmed = await uploadFile('products/split.gltf', Buffer.from(JSON.stringify(gltf)));
    expect(confirmed.kind).toBe('model');
    const refused = await call('POST', '/v1/products', { name: 'Split', upload_id: confirmed.upload_id });
    expect(refused.status).toBe(422);
    expect(refused.json.message).toContain('chair.bin, tex/wood.png');
    expect(refused.json.details).toEqual([{ field: 'upload_id', message: 'external URI chair.bin' }, { field: 'upload_id', message: 'external URI tex/wood.png' }]);
  });
});
