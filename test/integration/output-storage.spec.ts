import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { text } from 'node:stream/consumers';
import request from 'supertest';
import { LocalOutputStorage } from '../../src/repositories/output-storage/local';
import { S3OutputStorage } from '../../src/repositories/output-storage/s3';
import type { OutputStorage } from '../../src/repositories/output-storage/port';
import { parseStorageUrl } from '../../src/repositories/output-storage/location';
import { type ApiApp, startApi } from '../helpers/api-app';
import { probe } from '../helpers/media';
import { FIXTURE_TEMPLATES } from '../helpers/render-context';
import { type S3Server, startS3Server } from '../helpers/s3-server';
import { until } from '../helpers/wait';

// The storage port on both adapters, against a real S3-compatible server (radosgw, which
// checks signatures), and render nodes that share nothing with the API but Redis and S3.
let s3: S3Server;
beforeAll(async () => {
  s3 = await startS3Server();
}, 120_000);
afterAll(async () => {
  await s3?.stop();
});

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'montage-storage-'));
const s3Location = (bucket: string, prefix = '') => parseStorageUrl(s3.storageUrl(bucket, prefix), '/unused') as Extract<ReturnType<typeof parseStorageUrl>, { kind: 's3' }>;
const newBucket = () => `montage-${randomBytes(4).toString('hex')}`;

function s3Client(): S3Client {
  return new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } });
}
async function keysIn(bucket: string): Promise<string[]> {
  const page = await s3Client().send(new ListObjectsV2Command({ Bucket: bucket }));
  return (page.Contents ?? []).map((o) => o.Key!).sort();
}

describe.each([
  ['local', () => new LocalOutputStorage(tmp())],
  ['s3', () => new S3OutputStorage(s3Location(newBucket(), 'team/a'), tmp())],
])('%s storage', (_kind, make: () => OutputStorage) => {
  let storage: OutputStorage;
  beforeEach(async () => {
    storage = make();
    await storage.init(); // creates the bucket on S3
  });

  it('stores an output once its write succeeds; reads it whole and by byte range; removes it', async () => {
    expect(await storage.stat('k1', 'mp4')).toBeUndefined();
    const result = await storage.storeOutput('k1', 'mp4', async (file) => {
      fs.writeFileSync(file, '0123456789abcdef');
      expect(await storage.stat('k1', 'mp4')).toBeUndefined(); // not there while it is being written
      return 'written';
    });
    expect(result).toBe('written');
    expect(await storage.stat('k1', 'mp4')).toMatchObject({ size: 16 });
    expect(await text(await storage.read('k1', 'mp4'))).toBe('0123456789abcdef');
    expect(await text(await storage.read('k1', 'mp4', { start: 3, end: 6 }))).toBe('3456');
    await storage.remove('k1', 'mp4');
    expect(await storage.stat('k1', 'mp4')).toBeUndefined();
    await expect(storage.read('k1', 'mp4')).rejects.toMatchObject({ kind: 'not_found' });
    await storage.remove('k1', 'mp4'); // removing what is gone is not an error
    await storage.ping();
  });

  it('has an identity once initialised, kept by later start-ups', async () => {
    const id = await storage.identity();
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    await storage.init();
    expect(await storage.identity()).toBe(id);
  });

  it('a write that fails stores nothing and leaves no staging file', async () => {
    let staging = '';
    await expect(
      storage.storeOutput('k2', 'webm', async (file) => {
        staging = file;
        fs.writeFileSync(file, 'half');
        throw new Error('ffmpeg died');
      }),
    ).rejects.toThrow('ffmpeg died');
    expect(await storage.stat('k2', 'webm')).toBeUndefined();
    expect(fs.existsSync(staging)).toBe(false);
  });

  it('lists the reusable pieces among the outputs (segments sg…, sound tracks sd…) with size and age, nothing else', async () => {
    const sg = `sg${'a'.repeat(40)}`;
    const sd = `sd${'b'.repeat(40)}`;
    const before = Date.now() - 60_000;
    await storage.storeOutput(sg, 'mp4', async (file) => fs.writeFileSync(file, 'segment'));
    await storage.storeOutput(sd, 'm4a', async (file) => fs.writeFileSync(file, 'sound'));
    await storage.storeOutput('d41d8cd98f00b204e9800998ecf8427e', 'mp4', async (file) => fs.writeFileSync(file, 'an output'));
    await storage.storeOutput(`sg${'c'.repeat(39)}`, 'mp4', async (file) => fs.writeFileSync(file, 'not an address'));
    const listed = (await storage.listReusable()).sort((a, b) => a.key.localeCompare(b.key));
    expect(listed.map(({ key, ext, bytes }) => ({ key, ext, bytes }))).toEqual([
      { key: sd, ext: 'm4a', bytes: 5 },
      { key: sg, ext: 'mp4', bytes: 7 },
    ]);
    for (const piece of listed) expect(piece.storedMs).toBeGreaterThan(before);
  });

  it('keeps segments by name until they are removed', async () => {
    const bytes = randomBytes(300_000);
    expect(await storage.storeSegment('r-a1-0-15.mp4', async (file) => (fs.writeFileSync(file, bytes), bytes.length))).toBe(300_000);
    expect(Buffer.compare(await storage.readSegment('r-a1-0-15.mp4'), bytes)).toBe(0);
    await storage.removeSegment('r-a1-0-15.mp4');
    await expect(storage.readSegment('r-a1-0-15.mp4')).rejects.toThrow();
  });

  it('lists segments (and a staging file being written) for the sweeper, and removes them, never outside its area', async () => {
    await storage.storeSegment('abc-a1abcdef-0-3.mp4', async (file) => fs.writeFileSync(file, 'seg'));
    let during: string[] = [];
    await storage.storeSegment('abc-a1abcdef-3-9.mp4', async (file) => {
      fs.writeFileSync(file, 'partial');
      during = (await storage.listLeftovers()).map((l) => l.name);
    });
    // A staging file counts where the storage holds it (local); S3 stages on the writer's own disk.
    if (storage.kind === 'local') expect(during.some((n) => n.startsWith('.abc-a1abcdef-3-9.') && n.includes('.part'))).toBe(true);
    const listed = await storage.listLeftovers();
    const seg = listed.find((l) => l.name === 'abc-a1abcdef-0-3.mp4')!;
    expect(seg).toMatchObject({ area: 'segments', bytes: 3 });
    expect(Date.now() - seg.modifiedMs).toBeLessThan(60_000);
    await storage.removeLeftover(seg);
    await storage.removeLeftover({ name: '../storage-id', area: 'segments', bytes: 0, modifiedMs: 0 }); // refused: not a name of its own
    expect((await storage.listLeftovers()).map((l) => l.name)).not.toContain('abc-a1abcdef-0-3.mp4');
    expect(await storage.identity()).toBeDefined();
  });

  it('refuses names that are not its own (no paths, no traversal)', async () => {
    await expect(storage.storeOutput('../etc/passwd', 'mp4', async () => undefined)).rejects.toThrow(/not a storage name/);
    await expect(storage.readSegment('a/../../b')).rejects.toThrow(/not a storage name/);
  });

  it('presigns uploads and downloads where the store can (S3: a POST policy and a query-signed GET); local storage has none (the API serves them)', async () => {
    const up = await storage.presignUpload('up-contract', 'upload', { maxBytes: 1000, expiresSec: 60 });
    const down = await storage.presignDownload('up-contract', 'upload', { expiresSec: 60, filename: 'scène "1".blend' });
    if (storage.kind === 'local') {
      expect(up).toBeUndefined();
      expect(down).toBeUndefined();
      return;
    }
    expect(up).toMatchObject({ method: 'POST', fields: { 'x-amz-algorithm': 'AWS4-HMAC-SHA256' } });
    // As Python's requests posts it (data=fields, files={'file': …}): the fields, then the file.
    const post = (fields: Record<string, string>, bytes: Buffer) => {
      const form = new FormData();
      for (const [k, v] of Object.entries(fields)) form.append(k, v);
      form.append('file', new Blob([bytes]), 'scene.blend');
      return fetch(up!.url, { method: 'POST', body: form });
    };
    const bytes = randomBytes(700);
    const posted = await post(up!.fields, bytes);
    expect(posted.status).toBe(204);
    expect(await storage.stat('up-contract', 'upload')).toMatchObject({ size: 700 });

    // Over the policy's content-length-range, or signed with another secret: the store refuses, nothing is written.
    const tooBig = await storage.presignUpload('up-big', 'upload', { maxBytes: 100, expiresSec: 60 });
    expect((await post(tooBig!.fields, randomBytes(101))).status).toBe(400);
    expect(await storage.stat('up-big', 'upload')).toBeUndefined();
    const forged = { ...up!.fields, key: up!.fields.key.replace('up-contract', 'up-forged') };
    expect((await post(forged, bytes)).status).toBe(403);
    const badSig = { ...tooBig!.fields, 'x-amz-signature': '0'.repeat(64) };
    expect((await post(badSig, randomBytes(10))).status).toBe(403);
    expect(await storage.stat('up-forged', 'upload')).toBeUndefined();

    // The download URL reads the bytes under the given name, and stops working once it expires.
    const got = await fetch(down!);
    expect(got.status).toBe(200);
    expect(Buffer.from(await got.arrayBuffer()).equals(bytes)).toBe(true);
    expect(got.headers.get('content-disposition')).toContain("filename*=UTF-8''sc%C3%A8ne%20_1_.blend");
    const tampered = down!.replace('X-Amz-Expires=60', 'X-Amz-Expires=600');
    expect((await fetch(tampered)).status).toBe(403);
    const short = await storage.presignDownload('up-contract', 'upload', { expiresSec: 1, filename: 'a.blend' });
    expect((await fetch(short!)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 2500));
    expect((await fetch(short!)).status).toBe(403);
  }, 30_000);
});

it('local: start-up removes staging files and segments that an interrupted run left', async () => {
  const dir = tmp();
  fs.mkdirSync(path.join(dir, 'outputs'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'segments'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'outputs', '.k.0a1b2c.part.mp4'), 'half');
  fs.writeFileSync(path.join(dir, 'outputs', 'k.mp4'), 'whole');
  fs.writeFileSync(path.join(dir, 'segments', 'k-a1-0-15.mp4'), 'orphan');
  await new LocalOutputStorage(dir).init();
  expect(fs.readdirSync(path.join(dir, 'outputs'))).toEqual(['k.mp4']);
  expect(fs.readdirSync(path.join(dir, 'segments'))).toEqual([]);
});

it('s3: wrong credentials are reported by /health-style pings and start-up, without the secret', async () => {
  const location = { ...s3Location(newBucket()), credentials: { accessKeyId: 'TESTKEY', secretAccessKey: 'WRONGSECRET' } };
  const storage = new S3OutputStorage(location, tmp());
  const err = await storage.init().then(() => undefined, (e: Error) => e);
  expect(err?.message).toMatch(/cannot be reached: SignatureDoesNotMatch|cannot be reached: .*403/);
  expect(err?.message).not.toContain('WRONGSECRET');
  await expect(storage.ping()).rejects.toThrow();
});

describe('render nodes that share only Redis and S3 with the API', () => {
  let api: ApiApp;
  let node: ChildProcess | undefined;
  const bucket = newBucket();
  const nodeDataDir = tmp();

  beforeAll(async () => {
    api = await startApi({ env: { EMBEDDED_RENDER_NODE: '0', STORAGE_URL: s3.storageUrl(bucket) } });
    node = spawn('node', [path.join(__dirname, '..', '..', 'dist', 'render-nodes', 'main.js')], {
      env: {
        ...process.env,
        REDIS_URL: `unix://${path.join(api.dataDir, 'redis', 'redis.sock')}`,
        STORAGE_URL: s3.storageUrl(bucket),
        MONTAGE_TEMPLATES_DIR: FIXTURE_TEMPLATES,
        MONTAGE_DATA_DIR: nodeDataDir, // its own disk: nothing shared with the API's
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    await until('the render node', async () => ((await request(api.url).get('/v2/nodes')).body.nodes.length === 1 ? true : undefined));
  }, 60_000);
  afterAll(async () => {
    node?.kill('SIGKILL');
    await api?.close();
  });

  it('streams a parallel render, stores it in the bucket, serves it from there, and leaves no segment behind', async () => {
    const created = await request(api.url).post('/v2/render/t').set('X-Api-Key', api.key).send({ movie: 'motion', parallel: 2 }).expect(200);
    const res = await fetch(`${api.url}/v2/get/${created.body.token}.mp4`);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-montage-status')).toBe('rendering');
    const streamed = Buffer.from(await res.arrayBuffer());
    const file = path.join(api.dataDir, 'from-s3-nodes.mp4');
    fs.writeFileSync(file, streamed);
    expect((await probe(file)).video).toMatchObject({ codec_name: 'h264', nb_read_frames: '69' });

    // The stream ends when the video is complete; storing it in the bucket follows.
    await until('stored', async () => ((await request(api.url).get(`/v2/progress/${created.body.token}`)).body.status === 'done' ? true : undefined), 10_000);
    // The output, its segments kept by content for reuse (sg…) and its sound track (sd…); no per-run leftovers.
    const keys = await keysIn(bucket);
    expect(keys.filter((k) => /^outputs\/[0-9a-f]{40}\.mp4$/.test(k))).toHaveLength(1);
    expect(keys.filter((k) => /^outputs\/sg[0-9a-f]{40}\.mp4$/.test(k)).length).toBeGreaterThanOrEqual(2);
    expect(keys.filter((k) => /^outputs\/sd[0-9a-f]{40}\.m4a$/.test(k))).toHaveLength(1);
    expect(keys.filter((k) => !k.startsWith('outputs/'))).toEqual(['storage-id']);
    expect(fs.existsSync(path.join(api.dataDir, 'outputs'))).toBe(false);
    expect(fs.readdirSync(path.join(nodeDataDir, 'staging'))).toEqual([]);

    // Stored: now served from the bucket, with ranges.
    const whole = await request(api.url).get(`/v2/get/${created.body.token}.mp4`).buffer(true).expect(200);
    expect(whole.headers['x-montage-status']).toBe('done');
    const stored = path.join(api.dataDir, 'stored.mp4');
    fs.writeFileSync(stored, whole.body);
    expect((await probe(stored)).video?.nb_read_frames).toBe('69');
    const part = await request(api.url).get(`/v2/get/${created.body.token}.mp4`).set('Range', 'bytes=100-199').buffer(true).expect(206);
    expect(Buffer.compare(part.body, whole.body.subarray(100, 200))).toBe(0);

    // Where the storage is: for a key holder only; never the secret.
    const health = (await request(api.url).get('/health').set('X-Api-Key', api.key).expect(200)).body;
    expect(health.storage).toMatchObject({ kind: 's3', ok: true, location: `s3://${bucket}/ at ${s3.endpoint}` });
    expect(JSON.stringify(health)).not.toContain('TESTSECRET');
    const anonymous = (await request(api.url).get('/health').expect(200)).body;
    expect(anonymous.storage).toEqual({ kind: 's3', ok: true });
  });
});
