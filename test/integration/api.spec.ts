import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import request from 'supertest';
import { until } from '../helpers/wait';
import sharp from 'sharp';
import { ProjectsService } from '../../src/projects/projects.service';
import { signedUrl } from '../../src/projects/url-signing';
import type { ApiApp } from '../helpers/api-app';
import { startApi } from '../helpers/api-app';
import { probe } from '../helpers/media';

// The token API end to end: the real Nest app over HTTP, the embedded store, real ffmpeg.
let api: ApiApp;
let otherKey: string;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'montage-api-files-'));

beforeAll(async () => {
  api = await startApi();
  otherKey = (await api.app.get(ProjectsService).create('other')).apiKey;
});
afterAll(async () => {
  await api.close();
  fs.rmSync(work, { recursive: true, force: true });
});

const auth = () => ({ Authorization: `Bearer ${api.key}` });
const post = (body: unknown, route = 'render', project = 't') => request(api.url).post(`/v2/${route}/${project}`).set(auth()).send(body as object);

async function download(url: string, file: string, init?: RequestInit): Promise<{ status: number; headers: Headers; file: string }> {
  const res = await fetch(url, init);
  fs.writeFileSync(file, Buffer.from(await res.arrayBuffer()));
  return { status: res.status, headers: res.headers, file };
}

describe('POST → GET', () => {
  it('streams the mp4 on the first GET, then serves the stored file with Range, HEAD and ETag', async () => {
    const created = await post({ movie: 'colors', params: { label: 'API' } }).expect(200);
    expect(created.body.token).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(created.body.urls.mp4).toBe(`${api.url}/v2/get/${created.body.token}.mp4`);
    expect(Object.keys(created.body.urls).sort()).toEqual(['gif', 'jpg', 'mp4', 'png', 'webm', 'webp']);

    const first = await download(created.body.urls.mp4, path.join(work, 'first.mp4'));
    expect(first.status).toBe(200);
    expect(first.headers.get('content-type')).toBe('video/mp4');
    expect(first.headers.get('access-control-allow-origin')).toBe('*');
    const streamed = await probe(first.file);
    expect(streamed.video).toMatchObject({ codec_name: 'h264', width: 320, height: 180, nb_read_frames: '60' });
    expect(Math.abs(streamed.durationSec - 2)).toBeLessThan(0.1); // AAC frames round the audio up a little

    // The stream ended with the last frame; the stored file follows a moment later.
    const progress = await until('stored', async () => {
      const p = await request(api.url).get(`/v2/progress/${created.body.token}`).expect(200);
      return p.body.status === 'done' ? p : undefined;
    });
    expect(progress.body).toMatchObject({ status: 'done', framesDone: 60, totalFrames: 60, formats: { mp4: { status: 'done' } } });
    expect(progress.body.formats.mp4.bytes).toBeGreaterThan(1000);

    const stored = await download(`${api.url}/${created.body.token}.mp4`, path.join(work, 'stored.mp4'));
    expect(stored.status).toBe(200);
    expect(stored.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(stored.headers.get('accept-ranges')).toBe('bytes');
    expect(Number(stored.headers.get('content-length'))).toBe(progress.body.formats.mp4.bytes);
    expect((await probe(stored.file)).video?.nb_read_frames).toBe('60');
    expect(fs.readFileSync(stored.file).subarray(0, 64).includes(Buffer.from('moov'))).toBe(true); // faststart

    const etag = stored.headers.get('etag')!;
    const ranged = await request(api.url).get(`/v2/get/${created.body.token}.mp4`).set('Range', 'bytes=0-99').expect(206);
    expect(ranged.headers['content-range']).toBe(`bytes 0-99/${progress.body.formats.mp4.bytes}`);
    expect(Number(ranged.headers['content-length'])).toBe(100);
    await request(api.url).get(`/v2/get/${created.body.token}.mp4`).set('If-None-Match', etag).expect(304);
    await request(api.url).get(`/v2/get/${created.body.token}.mp4`).set('Range', 'bytes=999999999-').expect(416);
    const head = await request(api.url).head(`/v2/render/${created.body.token}.mp4`).expect(200);
    expect(head.headers['content-length']).toBe(String(progress.body.formats.mp4.bytes));
    expect(head.headers['x-montage-status']).toBe('done');
  });

  it('a movie map serves webm from one movie and everything else from "*"', async () => {
    const created = await post({ movie: { webm: 'colors', '*': 'motion' } }).expect(200);
    const webm = await download(`${api.url}/v2/render/${created.body.token}.webm`, path.join(work, 'map.webm'));
    expect(webm.headers.get('content-type')).toBe('video/webm');
    expect((await probe(webm.file)).video).toMatchObject({ codec_name: 'vp9', nb_read_frames: '60' });
    const mp4 = await download(`${api.url}/v2/render/${created.body.token}.mp4`, path.join(work, 'map.mp4'));
    expect((await probe(mp4.file)).video?.nb_read_frames).toBe('69'); // the motion movie
  });

  it('a frame as jpg, with ?frame= and ?q=', async () => {
    const created = await post({ movie: 'colors' }).expect(200);
    const res = await request(api.url).get(`/v2/get/${created.body.token}.jpg?frame=45&q=80`).buffer(true).expect(200);
    expect(res.headers['content-type']).toBe('image/jpeg');
    const { data, info } = await sharp(res.body as Buffer).raw().toBuffer({ resolveWithObject: true });
    const i = (45 * info.width + 240) * info.channels;
    expect(data[i + 1]).toBeGreaterThan(200); // the green box is there at frame 45
    expect(data[i]).toBeLessThan(60);
    await request(api.url).get(`/v2/get/${created.body.token}.jpg?frame=600`).expect(400);
    await request(api.url).get(`/v2/get/${created.body.token}.jpg?q=0`).expect(400);
  });

  it('progress moves from pending to rendering to done', async () => {
    const created = await post({ movie: 'motion' }).expect(200);
    const token = created.body.token as string;
    expect((await request(api.url).get(`/v2/progress/${token}`)).body).toMatchObject({ status: 'pending', framesDone: 0 });
    const seen = new Set<string>();
    const rendering = fetch(`${api.url}/v2/render/${token}.webm`).then((r) => r.arrayBuffer());
    for (let i = 0; i < 200; i++) {
      const p = (await request(api.url).get(`/v2/progress/${token}`)).body;
      seen.add(p.status);
      if (p.status === 'done') break;
      await new Promise((r) => setTimeout(r, 25));
    }
    await rendering;
    expect(seen.has('rendering')).toBe(true);
    expect((await request(api.url).get(`/v2/progress/${token}`)).body).toMatchObject({ status: 'done', framesDone: 69, totalFrames: 69 });
  });

  it('async: true starts rendering at once and answers 201', async () => {
    const created = await post({ movie: 'colors', params: { label: 'async' }, async: true }).expect(201);
    let status = 'pending';
    for (let i = 0; i < 200 && status !== 'done'; i++) {
      status = (await request(api.url).get(`/v2/progress/${created.body.token}`)).body.status;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(status).toBe('done');
  });

  it('/v2/token never starts a render, even when asked for async', async () => {
    const before = api.renders.counters.started;
    const created = await post({ movie: 'colors', params: { label: 'token only' }, async: true }, 'token').expect(200);
    await new Promise((r) => setTimeout(r, 300));
    expect(api.renders.counters.started).toBe(before);
    expect((await request(api.url).get(`/v2/progress/${created.body.token}`)).body.status).toBe('pending');
  });

  it('async on content that is already stored renders nothing again', async () => {
    const first = await post({ movie: 'colors', params: { label: 'stored once' } }).expect(200);
    await request(api.url).get(`/v2/render/${first.body.token}.mp4`).expect(200);
    const before = api.renders.counters.started;
    const again = await post({ movie: 'colors', params: { label: 'stored once' }, async: true }).expect(201);
    await new Promise((r) => setTimeout(r, 300));
    const res = await request(api.url).head(`/v2/get/${again.body.token}.mp4`).expect(200);
    expect(res.headers['x-montage-status']).toBe('done');
    expect(api.renders.counters.started - before).toBeLessThanOrEqual(1); // the async start found it stored
    expect((await request(api.url).get(`/v2/progress/${first.body.token}`)).body.formats.mp4.status).toBe('done');
  });
});

describe('one render per content', () => {
  it('20 concurrent GETs of one token share one render, and every viewer gets the whole video', async () => {
    const created = await post({ movie: 'colors', params: { label: 'twenty viewers' } }).expect(200);
    const before = api.renders.counters.started;
    const files = await Promise.all(
      Array.from({ length: 20 }, (_, i) => download(`${api.url}/v2/get/${created.body.token}.mp4`, path.join(work, `c${i}.mp4`))),
    );
    expect(api.renders.counters.started - before).toBe(1);
    const sizes = new Set(files.map((f) => fs.statSync(f.file).size));
    expect(sizes.size).toBe(1);
    for (const f of [files[0], files[19]]) expect((await probe(f.file)).video?.nb_read_frames).toBe('60');
  });

  it('two tokens with the same movie and params share one stored output', async () => {
    const a = await post({ movie: 'colors', params: { label: 'shared' } }).expect(200);
    const b = await post({ movie: 'colors', params: { label: 'shared' } }).expect(200);
    const before = api.renders.counters.started;
    await request(api.url).get(`/v2/render/${a.body.token}.png`).expect(200);
    const second = await request(api.url).get(`/v2/render/${b.body.token}.png`).expect(200);
    expect(api.renders.counters.started - before).toBe(1);
    expect(second.headers['x-montage-status']).toBe('done');
  });

  it('a viewer who leaves mid-stream does not stop the render', async () => {
    const created = await post({ movie: 'motion', params: {} , parallel: 2 }).expect(200);
    const controller = new AbortController();
    const res = await fetch(`${api.url}/v2/get/${created.body.token}.webm`, { signal: controller.signal });
    const reader = res.body!.getReader();
    await reader.read();
    controller.abort();
    let status = '';
    for (let i = 0; i < 300 && status !== 'done'; i++) {
      status = (await request(api.url).get(`/v2/progress/${created.body.token}`)).body.status;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(status).toBe('done');
    const head = await request(api.url).head(`/v2/get/${created.body.token}.webm`).expect(200);
    expect(Number(head.headers['content-length'])).toBeGreaterThan(1000);
  });
});

describe('bad requests get one clear JSON error', () => {
  const cases: Array<[string, () => request.Test, number, RegExp]> = [
    ['no API key', () => request(api.url).post('/v2/render/t').send({ movie: 'colors' }), 401, /API key is required/],
    ['a wrong API key', () => request(api.url).post('/v2/render/t').set('X-Api-Key', 'mk_nope').send({ movie: 'colors' }), 401, /invalid API key/],
    ["another project's key", () => request(api.url).post('/v2/render/t').set('X-Api-Key', otherKey).send({ movie: 'colors' }), 403, /another project/],
    ['an unknown movie', () => post({ movie: 'nope' }), 404, /unknown movie "nope"/],
    ['an unknown project folder', () => request(api.url).post('/v2/render/other').set('X-Api-Key', otherKey).send({ movie: 'x' }), 404, /unknown project "other"/],
    ['an unknown variable', () => post({ movie: 'colors', params: { colour: 1 } }), 400, /unknown variable "colour"/],
    ['a bad value, naming the field', () => post({ movie: 'colors', params: { box: 'green' } }), 400, /box: expected a colour/],
    ['an unknown request field', () => post({ movie: 'colors', speed: 'fast' }), 400, /unknown field: speed/],
    ['parallel out of range', () => post({ movie: 'colors', parallel: 0 }), 400, /parallel/],
    ['a movie map with a bad key', () => post({ movie: { avi: 'colors' } }), 400, /keys must be output extensions/],
    ['a body over the size limit', () => post({ movie: 'colors', params: { label: 'x'.repeat(300 * 1024) } }), 413, /larger than/],
    ['params over the project limit', () => post({ movie: 'colors', params: { label: 'x'.repeat(70 * 1024) } }), 413, /params are \d+ bytes/],
    ['invalid JSON', () => request(api.url).post('/v2/render/t').set(auth()).set('Content-Type', 'application/json').send('{"movie":'), 400, /not valid JSON/],
    ['an unknown token', () => request(api.url).get('/v2/get/AAAAAAAAAAAAAAAAAAAAAA.mp4'), 404, /unknown token/],
    ['an unsupported extension', () => request(api.url).get('/v2/get/AAAAAAAAAAAAAAAAAAAAAA.avi'), 400, /unsupported extension/],
    ['progress of an unknown token', () => request(api.url).get('/v2/progress/AAAAAAAAAAAAAAAAAAAAAA'), 404, /unknown token/],
  ];
  it.each(cases)('%s', async (_label, send, status, message) => {
    const res = await send().expect(status);
    expect(res.body).toMatchObject({ statusCode: status, error: expect.any(String), message: expect.stringMatching(message) });
  });

  it('bad params are all named in details', async () => {
    const res = await post({ movie: 'colors', params: { box: 'green', label: 5, extra: 1 } }).expect(400);
    expect(res.body.details.map((d: { field: string }) => d.field).sort()).toEqual(['box', 'extra']);
  });

  it('an extension the movie map does not cover is 404 naming the ones it does', async () => {
    const created = await post({ movie: { mp4: 'colors', gif: 'colors' } }).expect(200);
    const res = await request(api.url).get(`/v2/get/${created.body.token}.webm`).expect(404);
    expect(res.body.message).toMatch(/has \.mp4, \.gif/);
  });

  it('duration × resolution over the project limit is 413', async () => {
    const projects = api.app.get(ProjectsService);
    const t = await projects.get('t');
    const repo = (projects as unknown as { projects: { save(d: unknown): Promise<void> } }).projects;
    await repo.save({ ...t, limits: { ...t.limits, maxPixelSeconds: 320 * 180 } });
    try {
      const res = await post({ movie: 'colors' }).expect(413);
      expect(res.body.message).toMatch(/320×180 for 2\.0 s/);
      await repo.save({ ...t, limits: { ...t.limits, maxPixelSeconds: 0, maxParamsBytes: 0 } });
      await post({ movie: 'colors', params: { label: 'x'.repeat(70 * 1024) } }).expect(400); // 0: no limit (the string cap still holds)
      await post({ movie: 'colors' }).expect(200);
    } finally {
      await repo.save(t);
    }
  });

  it('unusable media fails the GET with 422 and progress says why', async () => {
    const created = await post({ movie: 'media', params: { photo: 'http://127.0.0.1:9/x.png' } }).expect(200);
    const res = await request(api.url).get(`/v2/get/${created.body.token}.mp4`).expect(422);
    expect(res.body.message).toMatch(/127\.0\.0\.1/);
    const p = (await request(api.url).get(`/v2/progress/${created.body.token}`)).body;
    expect(p.status).toBe('failed');
    expect(p.error).toMatch(/private|loopback/);
  });
});

describe('DELETE /v2/token', () => {
  it('needs the project key, removes the token and the outputs no other token shares', async () => {
    const mine = await post({ movie: 'colors', params: { label: 'mine' } }).expect(200);
    const shared = await post({ movie: 'colors', params: { label: 'ours' } }).expect(200);
    const sharer = await post({ movie: 'colors', params: { label: 'ours' } }).expect(200);
    for (const t of [mine, shared, sharer]) await request(api.url).get(`/v2/render/${t.body.token}.png`).expect(200);

    await request(api.url).delete(`/v2/token/${mine.body.token}`).expect(401);
    await request(api.url).delete(`/v2/token/${mine.body.token}`).set('X-Api-Key', otherKey).expect(403);
    const del = await request(api.url).delete(`/v2/token/${mine.body.token}`).set(auth()).expect(200);
    expect(del.body).toEqual({ deleted: mine.body.token, outputsRemoved: 1 });
    await request(api.url).get(`/v2/get/${mine.body.token}.png`).expect(404);

    const delShared = await request(api.url).delete(`/v2/token/${shared.body.token}`).set(auth()).expect(200);
    expect(delShared.body.outputsRemoved).toBe(0); // the sharer still has it
    const still = await request(api.url).get(`/v2/get/${sharer.body.token}.png`).expect(200);
    expect(still.headers['x-montage-status']).toBe('done');
  });
});

describe('signed direct-render URLs', () => {
  it('renders for a valid signature and refuses a tampered one', async () => {
    const secret = (await api.app.get(ProjectsService).get('t')).signingSecret;
    const url = signedUrl(api.url, 't', 'colors', 'png', { label: 'Signed', frame: '45' }, secret);
    const before = api.renders.counters.started;
    const head = await request(url).head('').expect(200);
    expect(head.headers['x-montage-status']).toBe('pending');
    expect(api.renders.counters.started).toBe(before); // HEAD never renders
    const ok = await request(url).get('').buffer(true).expect(200);
    expect(ok.headers['content-type']).toBe('image/png');
    await request(url.replace('label=Signed', 'label=Forged')).get('').expect(403);
    await request(url.replace('frame=45', 'frame=46')).get('').expect(403);
    await request(api.url).get('/v1/render/t/colors.png?label=x').expect(403);
    // The token behind a signed URL opens that output only: not another format, not another frame.
    const { createHmac } = await import('node:crypto');
    const { canonicalJson } = await import('../../src/common/canonical-json');
    const token = createHmac('sha256', secret).update(canonicalJson({ movie: 'colors', ext: 'png', params: { label: 'Signed' }, pinned: { frame: 45 } })).digest('base64url').slice(0, 32);
    await request(api.url).get(`/v2/get/${token}.mp4`).expect(404);
    const pinned = await request(api.url).get(`/v2/get/${token}.png?frame=3`).buffer(true).expect(200);
    expect(Buffer.compare(pinned.body as Buffer, ok.body as Buffer)).toBe(0); // ?frame=3 ignored: frame 45, as signed
  });
});

describe('movies', () => {
  it('lists movies and describes one with its variables', async () => {
    const list = await request(api.url).get('/v2/projects/t/movies').expect(200);
    expect(list.body.movies.map((m: { name: string }) => m.name)).toEqual(['badge', 'captions', 'captions-words', 'chapters', 'colors', 'greeting', 'hostile', 'long', 'lottie', 'lottie-bad', 'lottie-look', 'media', 'motion', 'slow', 'sound', 'svg-refused']);
    const one = await request(api.url).get('/v2/projects/t/movies/colors').expect(200);
    expect(one.body).toMatchObject({ name: 'colors', width: 320, height: 180, fps: 30, durationSec: 2, variables: { box: { type: 'color', default: '#00ff00' } } });
    expect(one.body.posterUrl).toMatch(/^\/v1\/render\/t\/colors\.jpg\?sig=[0-9a-f]{64}$/);
    await request(api.url).get(one.body.posterUrl).expect(200);
    await request(api.url).get('/v2/projects/t/movies/nope').expect(404);
    await request(api.url).get('/v2/projects/nope/movies').expect(404);
  });
});

describe('metrics', () => {
  it('exposes renders by status, running renders, time to first byte and queue depth in Prometheus format', async () => {
    const created = await post({ movie: 'colors', params: { label: 'measured' } }).expect(200);
    await fetch(`${api.url}/v2/get/${created.body.token}.mp4`).then((r) => r.arrayBuffer());
    // The stream ends once the video is complete; storing it finishes a moment later.
    const res = await until('the render to be stored', async () => {
      const r = await request(api.url).get('/metrics').expect(200);
      return /^montage_renders_running 0$/m.test(r.text) ? r : undefined;
    });
    expect(res.headers['content-type']).toMatch(/text\/plain/);
    expect(res.text).toMatch(/^montage_renders_total\{status="done",format="mp4"\} [1-9]\d*$/m);
    expect(res.text).toMatch(/^montage_renders_running 0$/m);
    expect(res.text).toMatch(/^montage_time_to_first_byte_seconds_count [1-9]\d*$/m);
    expect(res.text).toMatch(/^montage_queue_waiting_jobs\{routing_key="default",queue="render.default"\} 0$/m);
  });
});

describe('health', () => {
  it('reports the store, the storage and ffmpeg', async () => {
    const res = await request(api.url).get('/health').expect(200);
    expect(res.body).toMatchObject({ status: 'ok', store: { kind: 'nedb', ok: true }, storage: { kind: 'local', ok: true } });
    expect(res.body.ffmpeg).toMatch(/^ffmpeg version/);
  });
});

describe('per-token output limit', () => {
  it('a token cannot be used to render any number of frames', async () => {
    const limited = await startApi({ env: { MAX_OUTPUTS_PER_TOKEN: '3' } });
    try {
      const created = await request(limited.url).post('/v2/render/t').set('X-Api-Key', limited.key).send({ movie: 'colors' }).expect(200);
      for (const frame of [1, 2, 3]) await request(limited.url).get(`/v2/get/${created.body.token}.png?frame=${frame}`).expect(200);
      const res = await request(limited.url).get(`/v2/get/${created.body.token}.png?frame=4`).expect(429);
      expect(res.body.message).toMatch(/limit is 3/);
      await request(limited.url).get(`/v2/get/${created.body.token}.png?frame=2`).expect(200); // known outputs stay available
    } finally {
      await limited.close();
      Object.assign(process.env, { MAX_OUTPUTS_PER_TOKEN: '64' });
    }
  });
});

describe('media params over the API are URLs only', () => {
  it.each(['@/etc/passwd', 'file:///etc/passwd', '/etc/passwd', '@./movie.yaml'])('a POST with photo %j is a 400 naming the param, and nothing is read', async (photo) => {
    const res = await post({ movie: 'media', params: { photo } }).expect(400);
    expect(res.body.message).toMatch(/photo: expected an http\(s\) URL of an image/);
    expect(res.body.details).toEqual([{ field: 'photo', message: expect.stringMatching(/^expected an http\(s\) URL/) }]);
    expect(JSON.stringify(res.body)).not.toMatch(/root:/);
  });
});
