import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import type { Browser } from 'playwright-core';
import { chromiumPath, codecSupport, launchChromium, measurePlayback, PlaybackError, pixelAt } from '../helpers/browser';
import { near } from '../helpers/media';

/**
 * The browser playback helper against a plain HTTP server: a finished file served with Range
 * support, and a fragmented MP4 trickled as a growing chunked response (no Content-Length), as
 * `/v2/get/<token>.mp4` sends a video while it renders.
 */
const CHROMIUM = chromiumPath();
if (!CHROMIUM) console.warn('skipped: browser playback tests need Chromium (apt-get install chromium, or set CHROMIUM_PATH)');
const suite = CHROMIUM ? describe : describe.skip;

const run = promisify(execFile);
const RED: [number, number, number] = [0xc0, 0x20, 0x20];
const BLUE: [number, number, number] = [0x20, 0x40, 0xc0];
/** `seconds` of testsrc2 and a tone, with a 64x64 box at the top left: red for the first second, blue after. */
const picture = (seconds: number) => [
  '-f', 'lavfi', '-i', `testsrc2=size=320x240:rate=30:duration=${seconds}`,
  '-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=48000:duration=${seconds}`,
  '-vf', "drawbox=x=0:y=0:w=64:h=64:color=0xC02020:t=fill:enable='lt(t,1)',drawbox=x=0:y=0:w=64:h=64:color=0x2040C0:t=fill:enable='gte(t,1)'",
  '-pix_fmt', 'yuv420p',
];
const FILES: Record<string, string[]> = {
  'static.mp4': [...picture(3), '-c:v', 'libx264', '-preset', 'veryfast', '-c:a', 'aac', '-movflags', '+faststart'],
  'static.webm': [...picture(3), '-c:v', 'libvpx-vp9', '-b:v', '400k', '-deadline', 'realtime', '-cpu-used', '8', '-c:a', 'libopus'],
  // As Montage streams while rendering: a keyframe (so a fragment) every second, the moov (with edit lists) before the first fragment.
  'fragmented.mp4': [...picture(4), '-c:v', 'libx264', '-preset', 'veryfast', '-g', '30', '-c:a', 'aac', '-movflags', 'frag_keyframe+empty_moov+default_base_moof+delay_moov'],
};
/** The 4 s fragmented MP4 over 3 s: faster than it plays, so a viewer who starts early never catches up. */
const TRICKLE_MS = 3_000;

interface Served {
  path: string;
  range?: string;
  /** Date.now() when the last byte was written; unset while the response is open. */
  finishedAt?: number;
  bytes: number;
}

/**
 * `/static/<file>`: whole file, Range requests answered with 206.
 * `/growing/<file>?ms=N`: 200, chunked, no Content-Length, the bytes spread evenly over N ms.
 * `/stall/<file>?ms=N`: the first half at once, nothing for N ms, then the rest.
 * `/silent`: headers, then nothing, ever. Anything else: 404.
 */
async function startServer(dir: string) {
  const log: Served[] = [];
  const open = new Set<http.ServerResponse>();
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const [, mode, name] = url.pathname.split('/');
    const file = name ? path.join(dir, path.basename(name)) : '';
    const entry: Served = { path: url.pathname, range: req.headers.range, bytes: 0 };
    log.push(entry);
    open.add(res);
    res.on('close', () => open.delete(res));
    const type = name?.endsWith('.webm') ? 'video/webm' : 'video/mp4';
    const send = (chunk: Buffer) => {
      entry.bytes += chunk.length;
      res.write(chunk);
    };
    const end = () => {
      entry.finishedAt = Date.now();
      res.end();
    };
    if (mode === 'silent') {
      res.writeHead(200, { 'Content-Type': 'video/mp4' });
      res.flushHeaders();
      return;
    }
    if (!file || !fs.existsSync(file)) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
      return;
    }
    const body = fs.readFileSync(file);
    if (mode === 'static') {
      const m = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? '');
      let start = 0;
      let last = body.length - 1;
      if (m && (m[1] || m[2])) {
        if (m[1]) {
          start = Number(m[1]);
          if (m[2]) last = Math.min(Number(m[2]), last);
        } else {
          start = Math.max(0, body.length - Number(m[2]));
        }
        if (start > last) {
          res.writeHead(416, { 'Content-Range': `bytes */${body.length}` }).end();
          return;
        }
        res.writeHead(206, { 'Content-Type': type, 'Accept-Ranges': 'bytes', 'Content-Range': `bytes ${start}-${last}/${body.length}`, 'Content-Length': String(last - start + 1) });
      } else {
        res.writeHead(200, { 'Content-Type': type, 'Accept-Ranges': 'bytes', 'Content-Length': String(body.length) });
      }
      send(body.subarray(start, last + 1));
      end();
      return;
    }
    if (mode !== 'growing' && mode !== 'stall') {
      res.writeHead(404).end();
      return;
    }
    // Like a live render: no Content-Length, no Accept-Ranges, not cacheable.
    const ms = Number(url.searchParams.get('ms') ?? 2000);
    res.writeHead(200, { 'Content-Type': type, 'Cache-Control': 'no-store' });
    res.flushHeaders();
    const chunks: Array<[Buffer, number]> = [];
    if (mode === 'growing') {
      const n = 40;
      const size = Math.ceil(body.length / n);
      for (let i = 0; i < n; i++) chunks.push([body.subarray(i * size, (i + 1) * size), ms / n]);
    } else {
      const half = Math.floor(body.length / 2);
      chunks.push([body.subarray(0, half), ms]);
      const size = Math.ceil((body.length - half) / 10);
      for (let i = 0; i < 10; i++) chunks.push([body.subarray(half + i * size, half + (i + 1) * size), 20]);
    }
    const next = () => {
      if (res.destroyed) return;
      const item = chunks.shift();
      if (!item) return end();
      send(item[0]);
      setTimeout(next, item[1]);
    };
    next();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    base,
    log,
    requestsFor: (p: string) => log.filter((e) => e.path === p),
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of open) res.destroy();
        server.close(() => resolve());
      }),
  };
}

suite('browser playback helper (real Chromium)', () => {
  let dir: string;
  let browser: Browser;
  let server: Awaited<ReturnType<typeof startServer>>;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'montage-playback-'));
    await Promise.all(Object.entries(FILES).map(([name, args]) => run('ffmpeg', ['-v', 'error', '-y', ...args, path.join(dir, name)])));
    fs.writeFileSync(path.join(dir, 'garbage.mp4'), Buffer.alloc(64 * 1024, 0x5a));
    server = await startServer(dir);
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('this Chromium decodes H.264/AAC and VP9/Opus', async () => {
    expect(await codecSupport(browser)).toEqual({ h264: 'probably', aac: 'probably', vp9: 'probably', opus: 'probably' });
  });

  it.each(['static.mp4', 'static.webm'])('%s with Range support: starts, plays to the end without a stall, right size, right colours', async (name) => {
    const samples = [{ time: 0.5, x: 32, y: 32 }, { time: 2, x: 32, y: 32 }];
    const result = await measurePlayback(browser, `${server.base}/static/${name}`, { untilEnded: true, keepPage: true, samples });
    try {
      expect(result.error).toBeNull();
      expect(result.firstPlayingMs).toBeGreaterThan(0);
      expect(result.firstPlayingMs).toBeLessThan(10_000);
      expect(result.playingEventMs).not.toBeNull();
      expect(result.playingEventMs!).toBeLessThanOrEqual(result.firstPlayingMs);
      expect(result.ended).toBe(true);
      // From 0.2 s to the end (3 s) plays in real time.
      expect(result.endedMs! - result.firstPlayingMs).toBeGreaterThan(2_300);
      expect(result.endedMs! - result.firstPlayingMs).toBeLessThan(6_000);
      expect(result.stalled).toBe(false);
      expect(result.pauses).toBe(0);
      expect(result.maxFrameGapMs).toBeLessThan(500);
      expect(result.framesPresented).toBeGreaterThan(30);
      expect(Math.abs(result.duration - 3)).toBeLessThan(0.15);
      expect([result.videoWidth, result.videoHeight]).toEqual([320, 240]);
      expect(result.samples.map((p) => near(p.rgb, p.time < 1 ? RED : BLUE))).toEqual([true, true]);
      // Seeking back into the played video (Range requests): the decoded pixels, through a canvas.
      expect(near(await pixelAt(result.page!, 32, 32, { atTime: 0.5 }), RED)).toBe(true);
      expect(near(await pixelAt(result.page!, 32, 32, { atTime: 2 }), BLUE)).toBe(true);
      expect(near(await pixelAt(result.page!, 32, 32), BLUE)).toBe(true);
    } finally {
      await result.page?.context().close();
    }
    expect(server.requestsFor(`/static/${name}`).length).toBeGreaterThan(0);
  });

  // A response without Content-Length, like /v2/get/<token>.mp4 while the render runs: started
  // with play(), as a script or a click on the play button does.
  it.each(['fragmented.mp4', 'static.webm'])('%s sent as a growing response starts playing (with play()) before the response has ended', async (name) => {
    const before = server.log.length;
    const result = await measurePlayback(browser, `${server.base}/growing/${name}?ms=${TRICKLE_MS}`, { start: 'play' });
    const served = server.log.slice(before).filter((e) => e.path === `/growing/${name}`);
    // Still sending when the browser was already past 0.2 s: proof without comparing clocks.
    expect(served.length).toBeGreaterThan(0);
    expect(served.every((e) => e.finishedAt === undefined)).toBe(true);
    expect(result.error).toBeNull();
    expect(result.playRejected).toBeNull();
    expect(result.firstPlayingMs).toBeLessThan(TRICKLE_MS);
    expect([result.videoWidth, result.videoHeight]).toEqual([320, 240]);
  });

  it('the growing fragmented MP4 plays to its end without a stall, read once, front to back', async () => {
    const before = server.log.length;
    const samples = [0.5, 1.5, 3.5].map((time) => ({ time, x: 32, y: 32 }));
    const result = await measurePlayback(browser, `${server.base}/growing/fragmented.mp4?ms=${TRICKLE_MS}`, { start: 'play', untilEnded: true, keepPage: true, samples });
    try {
      const served = server.log.slice(before).filter((e) => e.path === '/growing/fragmented.mp4');
      expect(served).toHaveLength(1); // no second request: it cannot seek, and does not need to
      expect(served[0].finishedAt).toBeDefined();
      // Same machine, same system clock: the browser's clock and the server's can be compared.
      expect(result.firstPlayingAtEpochMs).toBeLessThan(served[0].finishedAt! - 500);
      expect(result.error).toBeNull();
      expect(result.ended).toBe(true);
      expect(result.stalled).toBe(false);
      expect(result.pauses).toBe(0);
      expect(result.maxFrameGapMs).toBeLessThan(500);
      expect(result.endedMs! - result.firstPlayingMs).toBeGreaterThan(3_300); // 0.2 s to 4 s, in real time
      expect(Math.abs(result.duration - 4)).toBeLessThan(0.15); // the AAC track runs a little longer
      // Read while it played: a stream without Range support cannot be seeked back into.
      expect(result.samples.map((p) => p.time)).toEqual([0.5, 1.5, 3.5]);
      result.samples.forEach((p) => expect(p.mediaTime - p.time).toBeLessThan(0.1));
      expect(result.samples.map((p) => near(p.rgb, p.time < 1 ? RED : BLUE))).toEqual([true, true, true]);
      expect(near(await pixelAt(result.page!, 32, 32), BLUE)).toBe(true); // the last frame, still shown
      await expect(pixelAt(result.page!, 32, 32, { atTime: 0.5 })).rejects.toThrow(/could not seek to 0.5 s .*seekable: 0-0/);
    } finally {
      await result.page?.context().close();
    }
  });

  // Chromium autoplays at HAVE_ENOUGH_DATA (canplaythrough), which needs a known length (or an
  // idle download) to estimate: with `autoplay` alone, a growing response plays only once it
  // has ended. If this starts failing, Chromium has changed, and "plays while rendering" may
  // no longer need play().
  it('with the autoplay attribute alone, Chromium waits for a response without Content-Length to end', async () => {
    const before = server.log.length;
    const result = await measurePlayback(browser, `${server.base}/growing/fragmented.mp4?ms=${TRICKLE_MS}`);
    const served = server.log.slice(before).filter((e) => e.path === '/growing/fragmented.mp4');
    expect(served).toHaveLength(1);
    expect(served[0].finishedAt).toBeDefined();
    expect(result.error).toBeNull();
    expect(result.firstPlayingMs).toBeGreaterThan(TRICKLE_MS - 500);
    expect(result.firstPlayingAtEpochMs).toBeGreaterThan(served[0].finishedAt! - 100);
    // ...though it could have: it had decoded frames long before.
    expect(result.loadedMetadataMs!).toBeLessThan(TRICKLE_MS - 500);
  });

  it('sees a stall when the bytes stop coming for a while after playback has started', async () => {
    const result = await measurePlayback(browser, `${server.base}/stall/fragmented.mp4?ms=2500`, { start: 'play', untilEnded: true });
    expect(result.error).toBeNull();
    expect(result.ended).toBe(true);
    expect(result.stalled).toBe(true);
    expect(result.stalls).toHaveLength(1);
    expect(result.stalls[0].currentTime).toBeGreaterThan(0.2);
    expect(result.stalls[0].durationMs).toBeGreaterThan(500);
    expect(result.maxFrameGapMs).toBeGreaterThan(500);
    expect(result.pauses).toBe(0); // a stall is not a pause
  });

  it('rejects with the media error for something that is not a video, and for a 404', async () => {
    for (const url of [`${server.base}/static/garbage.mp4`, `${server.base}/static/nothing.mp4`]) {
      const failure = await measurePlayback(browser, url, { timeoutMs: 10_000 }).catch((err: unknown) => err);
      expect(failure).toBeInstanceOf(PlaybackError);
      expect((failure as PlaybackError).message).toMatch(/media error.*MEDIA_ERR_SRC_NOT_SUPPORTED/);
      expect((failure as PlaybackError).result.error?.code).toBe(4);
      expect((failure as PlaybackError).result.firstPlayingMs).toBeNull();
    }
  });

  it('rejects after timeoutMs when the server never sends a byte', async () => {
    const started = Date.now();
    const failure = await measurePlayback(browser, `${server.base}/silent`, { timeoutMs: 1_500 }).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(PlaybackError);
    expect((failure as PlaybackError).message).toMatch(/timed out after 1500 ms before playing past 0.2 s/);
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});
