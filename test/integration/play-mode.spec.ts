import { type ChildProcess, execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { Queue } from 'bullmq';
import type { Browser } from 'playwright-core';
import request from 'supertest';
import { queueName, type RenderSegmentPayload } from '../../src/jobs/job.types';
import { initSegmentOf } from '../../src/play/media-segment';
import { type ApiApp, startApi } from '../helpers/api-app';
import { chromiumPath, launchChromium, pixelAt } from '../helpers/browser';
import { near } from '../helpers/media';
import { FIXTURE_TEMPLATES } from '../helpers/render-context';
import { until } from '../helpers/wait';

// Play mode against the API, a render-node process and real Redis: the `chapters` fixture is
// five 2 s scenes of flat colours, so a decoded frame says which part of the movie it is.
const execFileP = promisify(execFile);
const NODE = path.join(__dirname, '..', '..', 'dist', 'render-nodes', 'main.js');
const PLAY_PAGE = path.join(__dirname, '..', '..', 'examples', 'play.html');
const MAGENTA: [number, number, number] = [0xd0, 0x20, 0xd0];
const YELLOW: [number, number, number] = [0xd0, 0xd0, 0x20];
const RED: [number, number, number] = [0xd0, 0x20, 0x20];
const CHROMIUM = chromiumPath();
if (!CHROMIUM) console.warn('skipped: the play mode browser test needs Chromium (apt-get install chromium, or set CHROMIUM_PATH)');

let api: ApiApp;
let node: ChildProcess;
let queue: Queue;

const newToken = async (movie = 'chapters', params: Record<string, unknown> = {}) =>
  (await request(api.url).post('/v2/render/t').set('X-Api-Key', api.key).send({ movie, params }).expect(200)).body.token as string;

/** The ranges of the play-mode segment jobs the node was given (any state), sorted. */
async function playJobs(): Promise<Array<{ from: number; to: number }>> {
  const jobs = await queue.getJobs(['completed', 'active', 'waiting', 'prioritized', 'delayed', 'failed']);
  return jobs
    .filter((j) => j.name === 'render-segment' && (j.data as RenderSegmentPayload).run === 'play')
    .map((j) => (j.data as RenderSegmentPayload).range)
    .sort((a, b) => a.from - b.from);
}

/** Segment URIs and durations of a media playlist. */
function parsePlaylist(text: string): Array<{ uri: string; seconds: number }> {
  const lines = text.split('\n');
  return lines.flatMap((l, i) => (l.startsWith('#EXTINF:') ? [{ seconds: Number(l.slice(8, -1)), uri: lines[i + 1] }] : []));
}

beforeAll(async () => {
  api = await startApi({ env: { EMBEDDED_RENDER_NODE: '0' } });
  const redis = path.join(api.dataDir, 'redis', 'redis.sock');
  node = spawn('node', [NODE], {
    env: { ...process.env, REDIS_URL: `unix://${redis}`, MONTAGE_TEMPLATES_DIR: FIXTURE_TEMPLATES, MONTAGE_DATA_DIR: api.dataDir },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  await until('a render node', async () => ((await request(api.url).get('/v2/nodes')).body.nodes.length === 1 ? true : undefined));
  queue = new Queue(queueName('default'), { connection: { path: redis } });
});
afterAll(async () => {
  await queue?.close();
  node?.kill('SIGKILL');
  await api?.close();
});

it('the playlist is complete before anything renders; bad tokens and segments are 404 JSON; HEAD renders nothing', async () => {
  const token = await newToken();
  const res = await request(api.url).get(`/v2/play/${token}.m3u8`).expect(200);
  expect(res.headers['content-type']).toMatch(/^application\/vnd\.apple\.mpegurl/);
  expect(res.headers['cache-control']).toBe('public, max-age=10');
  const text = res.text;
  expect(text).toMatch(/^#EXTM3U\n#EXT-X-VERSION:7\n/);
  expect(text).toContain('#EXT-X-PLAYLIST-TYPE:VOD');
  expect(text.trimEnd().endsWith('#EXT-X-ENDLIST')).toBe(true);
  expect(text).toMatch(new RegExp(`#EXT-X-MAP:URI="${token}/init\\.mp4\\?k=[0-9a-f]{12}"`));
  const segments = parsePlaylist(text);
  expect(segments.map((s) => s.uri.replace(/\?k=.*/, ''))).toEqual(segments.map((_, i) => `${token}/seg-${i}.m4s`));
  expect(segments.reduce((sum, s) => sum + s.seconds, 0)).toBeCloseTo(10, 5);
  expect(Math.max(...segments.map((s) => s.seconds))).toBeLessThanOrEqual(2);
  expect((await request(api.url).head(`/v2/play/${token}.m3u8`).expect(200)).headers['content-length']).toBe(String(Buffer.byteLength(text)));

  const head = await request(api.url).head(`/v2/play/${token}/seg-3.m4s`).expect(200);
  expect(head.headers['x-montage-status']).toBe('pending');
  expect((await request(api.url).head(`/v2/play/${token}/init.mp4`).expect(200)).headers['x-montage-status']).toBe('pending');
  for (const [url, status] of [
    ['/v2/play/nosuchtoken.m3u8', 404],
    [`/v2/play/${token}/seg-${segments.length}.m4s`, 404],
    [`/v2/play/${token}/seg-x.m4s`, 404],
    [`/v2/play/${token}/seg-99999999.m4s`, 404],
    [`/v2/play/${token}/..%2Fetc.m4s`, 404],
    ['/v2/play/nosuchtoken/seg-0.m4s', 404],
  ] as const) {
    const bad = await request(api.url).get(url);
    expect(bad.status).toBe(status);
    expect(bad.body).toMatchObject({ statusCode: status, message: expect.any(String) });
  }
  // Other extensions under /v2/play are /v2/get's (HEAD starts nothing).
  const mp4 = await request(api.url).head(`/v2/play/${token}.mp4`).expect(200);
  expect(mp4.headers['content-type']).toBe('video/mp4');
  expect(mp4.headers['x-montage-status']).toBe('pending');
  expect(await playJobs()).toEqual([]);
  const js = await request(api.url).get('/v2/play/hls.min.js').expect(200);
  expect(js.headers['content-type']).toMatch(/javascript/);
  expect(js.text.length).toBeGreaterThan(100_000);
});

(CHROMIUM ? it : it.skip)(
  'Chromium with hls.js starting at 80 % plays from there, with nothing of the first six seconds rendered but the init segment',
  async () => {
    const token = await newToken();
    const browser: Browser = await launchChromium();
    try {
      const page = await browser.newPage();
      // The example page as if the API served it: same origin, so the canvas can be read (a file:// page's cannot).
      await page.route(`${api.url}/play.html**`, (route) => route.fulfill({ contentType: 'text/html', body: fs.readFileSync(PLAY_PAGE) }));
      const src = `${api.url}/v2/play/${token}.m3u8`;
      await page.goto(`${api.url}/play.html?src=${encodeURIComponent(src)}&t=8`);
      // Played on from the seek point (not merely seeked there).
      await page.waitForFunction('(() => { const v = document.querySelector("video"); return v.currentTime > 8.5 && !v.paused; })()', undefined, { timeout: 60_000 });
      expect(near(await pixelAt(page, 160, 90), MAGENTA)).toBe(true);
      // Back to 7 s: the fourth scene's colour (a segment rendered now, on demand).
      expect(near(await pixelAt(page, 160, 90, { atTime: 7 }), YELLOW)).toBe(true);
    } finally {
      await browser.close();
    }
    // Rendered: the 3-frame first segment (its moov is the init segment) and what the player fetched from 6 s on.
    const jobs = await playJobs();
    expect(jobs[0]).toEqual({ from: 0, to: 3 });
    expect(jobs.slice(1).every((r) => r.from >= 180)).toBe(true);
    expect(jobs.some((r) => r.from <= 240 && r.to > 240)).toBe(true);
  },
  120_000,
);

it('ffmpeg reads the whole presentation: every frame once, in order, with the movie’s colours; a second token renders nothing again', async () => {
  const token = await newToken();
  const src = `${api.url}/v2/play/${token}.m3u8`;
  const frames = async (url: string) => {
    const { stdout } = await execFileP('ffprobe', ['-v', 'error', '-select_streams', 'v', '-show_entries', 'frame=pts_time', '-of', 'csv=p=0', url], { maxBuffer: 8 * 1024 * 1024 });
    return stdout.split('\n').filter(Boolean).map((l) => parseFloat(l));
  };
  const times = await frames(src);
  expect(times).toHaveLength(300);
  times.forEach((t, i) => expect(t).toBeCloseTo(times[0] + i / 30, 3));
  // Frame 15 (0.5 s) and frame 285 (9.5 s), decoded from the playlist.
  const colour = async (second: number) => {
    const { stdout } = await execFileP('ffmpeg', ['-v', 'error', '-i', src, '-ss', String(second), '-frames:v', '1', '-vf', 'crop=2:2:160:90', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'], { encoding: 'buffer' });
    return [...stdout.subarray(0, 3)] as [number, number, number];
  };
  expect(near(await colour(0.5), RED)).toBe(true);
  expect(near(await colour(9.5), MAGENTA)).toBe(true);

  // As the README says: the presentation copied into one mp4, every frame there.
  const copy = path.join(api.dataDir, 'play-copy.mp4');
  await execFileP('ffmpeg', ['-v', 'error', '-i', src, '-c', 'copy', copy]);
  expect(await frames(copy)).toHaveLength(300);

  const rendered = (await playJobs()).length;
  const again = await newToken();
  expect(await frames(`${api.url}/v2/play/${again}.m3u8`)).toHaveLength(300);
  expect((await playJobs()).length).toBe(rendered);
  // Stored segments are content-addressed: cacheable for ever under the playlist's URL.
  const first = parsePlaylist((await request(api.url).get(`/v2/play/${again}.m3u8`)).text)[1].uri;
  const seg = await request(api.url).get(`/v2/play/${first}`).buffer(true).expect(200);
  expect(seg.headers['cache-control']).toBe('public, max-age=31536000, immutable');
  expect((await request(api.url).head(`/v2/play/${first.replace(/\?.*/, '')}`)).headers['x-montage-status']).toBe('done');
  // One init segment serves every segment: each stored segment's ftyp + moov is the same bytes (ffmpeg writes the moov before any frame).
  const initRes = await fetch(`${api.url}/v2/play/${again}/init.mp4`);
  expect(initRes.status).toBe(200);
  const init = Buffer.from(await initRes.arrayBuffer());
  const stored = (fs.readdirSync(path.join(api.dataDir, 'outputs'), { recursive: true }) as string[]).filter((f) => path.basename(f).startsWith('sg'));
  expect(stored.length).toBe(rendered);
  for (const f of stored) expect(initSegmentOf(fs.readFileSync(path.join(api.dataDir, 'outputs', f))).equals(init)).toBe(true);
}, 120_000);

it('a segment that fails to render is a 500 JSON with the render\'s reason, not a hang; the next request tries again', async () => {
  const token = await newToken('svg-refused', { size: 0 });
  for (let attempt = 0; attempt < 2; attempt++) {
    const res = await request(api.url).get(`/v2/play/${token}/seg-1.m4s`);
    expect(res.status).toBe(500);
    expect(res.body).toMatchObject({ statusCode: 500, message: expect.stringMatching(/segment 1 failed to render: .*badge\.svg\.hbs/) });
  }
  const init = await request(api.url).get(`/v2/play/${token}/init.mp4`);
  expect(init.status).toBe(500);
  expect(init.body.message).toMatch(/segment 0 failed to render/);
}, 60_000);

(CHROMIUM ? it : it.skip)(
  'a movie with sound: a master playlist with the sound as an audio rendition; Chromium plays both, ffmpeg reads both whole',
  async () => {
    const token = await newToken('sound');
    const master = (await request(api.url).get(`/v2/play/${token}.m3u8`).expect(200)).text;
    expect(master).toContain(`#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="sound",NAME="Sound",DEFAULT=YES,AUTOSELECT=YES,URI="${token}/audio.m3u8"`);
    expect(master).toMatch(new RegExp(`#EXT-X-STREAM-INF:BANDWIDTH=\\d+,RESOLUTION=64x36,FRAME-RATE=30.000,AUDIO="sound"\n${token}/video.m3u8\n`));
    expect((await request(api.url).head(`/v2/play/${token}/audio.m3u8`).expect(200)).headers['x-montage-status']).toBe('pending');
    const audio = (await request(api.url).get(`/v2/play/${token}/audio.m3u8`).expect(200)).text;
    expect(audio).toMatch(/#EXT-X-MAP:URI="audio\.mp4\?k=[0-9a-f]{12}",BYTERANGE="\d+@0"/);
    const durations = [...audio.matchAll(/#EXTINF:([\d.]+),/g)].map((m) => Number(m[1]));
    expect(durations.length).toBeGreaterThanOrEqual(4);
    expect(Math.max(...durations)).toBeLessThanOrEqual(2.1);
    expect(durations.reduce((a, b) => a + b, 0)).toBeCloseTo(8, 1);
    // A movie without sound has no audio rendition.
    const silent = await newToken();
    expect((await request(api.url).get(`/v2/play/${silent}/audio.m3u8`)).status).toBe(404);

    // ffmpeg: every video frame and the whole sound.
    const src = `${api.url}/v2/play/${token}.m3u8`;
    const { stdout } = await execFileP('ffprobe', ['-v', 'error', '-count_frames', '-show_entries', 'stream=codec_type,nb_read_frames:format=duration', '-of', 'json', src]);
    const probed = JSON.parse(stdout) as { streams: Array<{ codec_type: string; nb_read_frames: string }> };
    expect(probed.streams.find((s) => s.codec_type === 'video')?.nb_read_frames).toBe('240');
    // 8 s of 48 kHz AAC: 375 frames of 1024 samples (and the encoder's priming frame).
    expect(Number(probed.streams.find((s) => s.codec_type === 'audio')?.nb_read_frames)).toBeGreaterThanOrEqual(375);

    // The movie's sound, in its place: silent before the music starts at 0.5 s, loud once it has faded in.
    const pcm = (await execFileP('ffmpeg', ['-v', 'error', '-i', src, '-map', '0:a', '-ac', '1', '-ar', '8000', '-f', 's16le', '-'], { encoding: 'buffer', maxBuffer: 1 << 24 })).stdout;
    const rms = (from: number, to: number) => {
      let sum = 0;
      for (let i = from * 8000; i < to * 8000; i++) sum += pcm.readInt16LE(i * 2) ** 2;
      return Math.sqrt(sum / ((to - from) * 8000));
    };
    expect(pcm.length / 2 / 8000).toBeCloseTo(8, 1);
    expect(rms(0, 0.4)).toBeLessThan(50);
    expect(rms(2.6, 3.4)).toBeGreaterThan(1000);

    const browser: Browser = await launchChromium();
    try {
      const page = await browser.newPage();
      await page.route(`${api.url}/play.html**`, (route) => route.fulfill({ contentType: 'text/html', body: fs.readFileSync(PLAY_PAGE) }));
      await page.goto(`${api.url}/play.html?src=${encodeURIComponent(src)}&t=4`);
      await page.waitForFunction('(() => { const v = document.querySelector("video"); return v.currentTime > 5 && !v.paused; })()', undefined, { timeout: 60_000 });
      const state = (await page.evaluate('({ tracks: window.montageHls.audioTracks.length, decoded: document.querySelector("video").webkitAudioDecodedByteCount })')) as { tracks: number; decoded: number };
      expect(state.tracks).toBe(1);
      expect(state.decoded).toBeGreaterThan(0);
    } finally {
      await browser.close();
    }
  },
  120_000,
);
