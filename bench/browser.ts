/*
 * Used by the bench and, through test/helpers/browser.ts, by the tests: it lives here because
 * tsconfig.build.json (which builds bench/) does not include test/.
 */
import * as fs from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';

/**
 * Real-browser playback checks: how long a video URL takes to start playing in Chromium, whether
 * it stalls once playing, and what colour its decoded pixels are.
 *
 * The browser is the system's Chromium (Debian's `chromium` package: built with the proprietary
 * codecs, so H.264/AAC in MP4 plays as well as VP9/Opus in WebM); Playwright never downloads one.
 * `CHROMIUM_PATH` overrides where it is looked for.
 *
 * The code that runs in the page is plain JavaScript in strings, never a TypeScript function
 * handed to `page.evaluate`: the project compiles without DOM types, and a function body would be
 * instrumented by jest's coverage (`cov_… is not defined` in the browser).
 */

const CANDIDATES = [
  // The binary itself, not Debian's /usr/bin/chromium wrapper script: the wrapper sources
  // /etc/chromium.d (extensions, a /dev/shm probe that misparses findmnt in containers).
  '/usr/lib/chromium/chromium',
  '/usr/bin/chromium',
  '/usr/bin/chromium-browser',
  '/usr/bin/google-chrome',
];

/** Where Chromium is on this machine, or undefined when it is not installed. */
export function chromiumPath(): string | undefined {
  const wanted = process.env.CHROMIUM_PATH;
  if (wanted) return wanted;
  return CANDIDATES.find((file) => {
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Headless Chromium that autoplays without a user gesture. */
export async function launchChromium(): Promise<Browser> {
  const executablePath = chromiumPath();
  if (!executablePath) throw new Error('Chromium is not installed (apt-get install chromium, or set CHROMIUM_PATH)');
  return chromium.launch({
    executablePath,
    headless: true,
    // Playwright adds --no-sandbox (chromiumSandbox defaults to false), needed when run as root.
    args: [
      '--autoplay-policy=no-user-gesture-required',
      // Containers often have a 64 MB /dev/shm; Chromium's media/GPU shared memory can outgrow it.
      '--disable-dev-shm-usage',
    ],
  });
}

/** `canPlayType` answers of this Chromium ('probably', 'maybe' or ''), for skips and reports. */
export async function codecSupport(browser: Browser): Promise<{ h264: string; aac: string; vp9: string; opus: string }> {
  const page = await browser.newPage();
  try {
    return await page.evaluate<{ h264: string; aac: string; vp9: string; opus: string }>(`(() => {
      const v = document.createElement('video');
      return {
        h264: v.canPlayType('video/mp4; codecs="avc1.64001f"'),
        aac: v.canPlayType('audio/mp4; codecs="mp4a.40.2"'),
        vp9: v.canPlayType('video/webm; codecs="vp9"'),
        opus: v.canPlayType('audio/webm; codecs="opus"'),
      };
    })()`);
  } finally {
    await page.close();
  }
}

export interface PlaybackOptions {
  /** Give up (and reject) after this long, counted from navigation start. Default 30 s. */
  timeoutMs?: number;
  /** Playback counts as started once `video.currentTime` is past this many seconds. Default 0.2. */
  minTime?: number;
  /** Also wait for the `ended` event (`endedMs`, and a stall anywhere in the video is seen). */
  untilEnded?: boolean;
  /**
   * How playback is started. 'autoplay' (default): only the `autoplay` attribute, as an embedding
   * page would. 'play': the page also calls `video.play()` at once, as a script or a click on a
   * play button would. They differ for a response without Content-Length (a video sent while it
   * renders): Chromium autoplays only at HAVE_ENOUGH_DATA (`canplaythrough`), which it never
   * reaches for a resource of unknown length until the download is over, whereas `play()` starts
   * at HAVE_FUTURE_DATA, as soon as a few frames are in.
   */
  start?: 'autoplay' | 'play';
  /**
   * Pixels to read while it plays, each from the first frame presented at or after `time`
   * (seconds of media time), through a canvas. For a video that cannot be seeked (a response
   * without Range support, such as a video sent while it renders), this is the only way to see a
   * given moment; `pixelAt` can only read the current frame of those. Only frames presented
   * before the measurement ends are sampled (use `untilEnded` for late ones).
   */
  samples?: Array<{ time: number; x: number; y: number }>;
  /** Leave the page open and return it as `page` (for `pixelAt`); close it with `result.page.context().close()`. */
  keepPage?: boolean;
}

export interface Stall {
  /** When `waiting` fired, ms since navigation start. */
  atMs: number;
  /** `video.currentTime` then. */
  currentTime: number;
  /** Until the next `playing`; null if it never resumed before the measurement ended. */
  durationMs: number | null;
}

export interface PlaybackResult {
  /** ms from navigation start (≈ `page.goto`) until `video.currentTime > minTime`; ±1 animation frame. */
  firstPlayingMs: number;
  /** The same moment on the system clock (performance.timeOrigin + firstPlayingMs), to compare with a server's Date.now(). */
  firstPlayingAtEpochMs: number;
  /** performance.timeOrigin: navigation start on the system clock. */
  navigationStartEpochMs: number;
  /** Milestones, ms since navigation start; null when it never happened. */
  loadedMetadataMs: number | null;
  /** First `playing` event. */
  playingEventMs: number | null;
  /** First frame presented (requestVideoFrameCallback). */
  firstFrameMs: number | null;
  /** `ended` event (only waited for with `untilEnded`). */
  endedMs: number | null;
  ended: boolean;
  /** A `waiting` event after playback had started: playback ran out of data. */
  stalled: boolean;
  stalls: Stall[];
  /** `pause` events after playback had started, other than the one that comes with `ended`. */
  pauses: number;
  /** Frames presented (requestVideoFrameCallback callbacks), and the longest wall-clock gap between two once playing (a stall shows here too). */
  framesPresented: number;
  maxFrameGapMs: number;
  /** getVideoPlaybackQuality(). */
  droppedFrames: number;
  totalFrames: number;
  /** Final state of the element. `duration` is Infinity while a stream without a known length is still open. */
  duration: number;
  currentTime: number;
  videoWidth: number;
  videoHeight: number;
  readyState: number;
  networkState: number;
  buffered: Array<[number, number]>;
  /** video.error: 1 aborted, 2 network, 3 decode, 4 source not supported. */
  error: { code: number; name: string; message: string } | null;
  /** The `samples` asked for that were reached, in the order they were taken, with the media time of the frame read. */
  samples: Array<{ time: number; x: number; y: number; mediaTime: number; rgb: [number, number, number] }>;
  /** With start 'play': why `video.play()` was refused (e.g. "NotAllowedError: …"), else null. */
  playRejected: string | null;
  /** Every media event, in order: [type, ms since navigation start, currentTime]. */
  events: Array<[string, number, number]>;
  /** Open only with `keepPage`. */
  page?: Page;
}

/** Thrown when the goal (playing past `minTime`, and `ended` with `untilEnded`) was not reached; `result` says how far it got. */
export class PlaybackError extends Error {
  constructor(
    message: string,
    readonly result: Omit<PlaybackResult, 'firstPlayingMs' | 'firstPlayingAtEpochMs'> & { firstPlayingMs: number | null },
  ) {
    super(message);
    this.name = 'PlaybackError';
  }
}

/** The page's path on the video's own origin (see measurePlayback); nothing is ever requested there. */
const PAGE_PATH = '/__montage_playback_probe__.html';

/**
 * Opens a fresh browser context (empty cache) with a page holding
 * `<video muted autoplay playsinline src=url>` and measures, with the page's own clock, how long
 * until it plays past `minTime`; with `untilEnded`, also until it ends. Rejects with a
 * PlaybackError (carrying everything measured) on a media error or when `timeoutMs` runs out.
 *
 * The page is served by Playwright at `<the video's origin>/__montage_playback_probe__.html`, not
 * from about:blank or a data: URL, so that the video is same-origin: a canvas can then read its
 * pixels (`pixelAt`) without the server sending CORS headers or the element being `crossorigin`.
 */
export async function measurePlayback(browser: Browser, url: string, opts: PlaybackOptions = {}): Promise<PlaybackResult> {
  const { timeoutMs = 30_000, minTime = 0.2, untilEnded = false, keepPage = false, start = 'autoplay', samples = [] } = opts;
  const pageUrl = new URL(PAGE_PATH, url).href;
  const context = await browser.newContext();
  let keep = false;
  try {
    const page = await context.newPage();
    await page.route(pageUrl, (route) => route.fulfill({ status: 200, contentType: 'text/html; charset=utf-8', body: probePage(url, { minTime, timeoutMs, untilEnded, start, samples }) }));
    await page.goto(pageUrl, { waitUntil: 'domcontentloaded', timeout: timeoutMs });
    // Stop intercepting, so that any later request (a Range request of the video) goes straight to the network.
    await page.unrouteAll();
    // Resolves when the page has its answer (it keeps its own timeout).
    const raw = (await page.evaluate('window.__playback.result')) as RawResult;
    const result = finish(raw);
    if (raw.failure) throw new PlaybackError(`${raw.failure}: ${url} (${summary(result)})`, result);
    if (keepPage) {
      keep = true;
      return { ...(result as PlaybackResult), page };
    }
    return result as PlaybackResult;
  } finally {
    if (!keep) await context.close();
  }
}

interface RawResult extends Omit<PlaybackResult, 'page' | 'firstPlayingMs' | 'firstPlayingAtEpochMs' | 'duration'> {
  firstPlayingMs: number | null;
  /** Infinity and NaN do not survive JSON; sent as strings. */
  duration: number | string;
  failure: string | null;
}

function finish(raw: RawResult): PlaybackError['result'] & { firstPlayingAtEpochMs?: number } {
  const { failure: _failure, duration, ...rest } = raw;
  return {
    ...rest,
    duration: Number(duration),
    ...(raw.firstPlayingMs !== null ? { firstPlayingAtEpochMs: raw.navigationStartEpochMs + raw.firstPlayingMs } : {}),
  };
}

function summary(r: PlaybackError['result']): string {
  const err = r.error ? `error ${r.error.code} ${r.error.name} "${r.error.message}", ` : '';
  const events = r.events.map(([type, ms]) => `${type}@${Math.round(ms)}`).join(' ');
  return `${err}currentTime ${r.currentTime}, readyState ${r.readyState}, networkState ${r.networkState}, events: ${events || 'none'}`;
}

/** The measuring page. Everything is timed with performance.now(), i.e. from navigation start. */
function probePage(url: string, o: Required<Pick<PlaybackOptions, 'minTime' | 'timeoutMs' | 'untilEnded' | 'start' | 'samples'>>): string {
  const attr = url.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>playback probe</title><link rel="icon" href="data:,"></head>
<body style="margin:0;background:#000">
<video id="v" muted autoplay playsinline preload="auto" src="${attr}"></video>
<script>
(() => {
  const MIN_TIME = ${JSON.stringify(o.minTime)}, TIMEOUT_MS = ${JSON.stringify(o.timeoutMs)}, UNTIL_ENDED = ${JSON.stringify(o.untilEnded)};
  const v = document.getElementById('v');
  const pending = ${JSON.stringify(o.samples)}.slice().sort((a, b) => a.time - b.time);
  let canvas = null;
  const now = () => performance.now();
  const s = {
    firstPlayingMs: null, loadedMetadataMs: null, playingEventMs: null, firstFrameMs: null, endedMs: null,
    stalls: [], pauses: 0, framesPresented: 0, maxFrameGapMs: 0, lastFrameAt: null, events: [], playRejected: null, samples: [],
  };
  let settle;
  const done = new Promise((resolve) => { settle = resolve; });
  const NAMES = { 1: 'MEDIA_ERR_ABORTED', 2: 'MEDIA_ERR_NETWORK', 3: 'MEDIA_ERR_DECODE', 4: 'MEDIA_ERR_SRC_NOT_SUPPORTED' };
  const snapshot = (failure) => {
    const q = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : { droppedVideoFrames: 0, totalVideoFrames: 0 };
    const buffered = [];
    for (let i = 0; i < v.buffered.length; i++) buffered.push([v.buffered.start(i), v.buffered.end(i)]);
    return {
      failure,
      firstPlayingMs: s.firstPlayingMs, navigationStartEpochMs: performance.timeOrigin,
      loadedMetadataMs: s.loadedMetadataMs, playingEventMs: s.playingEventMs, firstFrameMs: s.firstFrameMs,
      endedMs: s.endedMs, ended: v.ended,
      stalled: s.stalls.length > 0, stalls: s.stalls.map((x) => ({ ...x })), pauses: s.pauses,
      framesPresented: s.framesPresented, maxFrameGapMs: s.maxFrameGapMs,
      droppedFrames: q.droppedVideoFrames, totalFrames: q.totalVideoFrames,
      duration: String(v.duration), currentTime: v.currentTime, videoWidth: v.videoWidth, videoHeight: v.videoHeight,
      readyState: v.readyState, networkState: v.networkState, buffered,
      error: v.error ? { code: v.error.code, name: NAMES[v.error.code] || 'unknown', message: v.error.message || '' } : null,
      events: s.events.slice(), playRejected: s.playRejected, samples: s.samples.slice(),
    };
  };
  const finish = (failure) => { if (!finish.called) { finish.called = true; settle(snapshot(failure)); } };
  const check = () => {
    if (s.firstPlayingMs === null && v.currentTime > MIN_TIME) {
      s.firstPlayingMs = now();
      if (!UNTIL_ENDED) finish(null);
    }
  };
  for (const type of ['loadstart', 'loadedmetadata', 'loadeddata', 'canplay', 'canplaythrough', 'play', 'playing',
    'waiting', 'stalled', 'suspend', 'pause', 'seeking', 'seeked', 'ended', 'error', 'abort', 'emptied', 'durationchange']) {
    v.addEventListener(type, () => { s.events.push([type, now(), v.currentTime]); });
  }
  v.addEventListener('loadedmetadata', () => { if (s.loadedMetadataMs === null) s.loadedMetadataMs = now(); });
  v.addEventListener('playing', () => {
    if (s.playingEventMs === null) s.playingEventMs = now();
    const open = s.stalls[s.stalls.length - 1];
    if (open && open.durationMs === null) open.durationMs = now() - open.atMs;
  });
  v.addEventListener('waiting', () => {
    if (s.playingEventMs !== null && !v.seeking) s.stalls.push({ atMs: now(), currentTime: v.currentTime, durationMs: null });
  });
  v.addEventListener('pause', () => { if (s.playingEventMs !== null && !v.ended) s.pauses++; });
  v.addEventListener('timeupdate', check);
  v.addEventListener('ended', () => {
    check();
    s.endedMs = now();
    finish(s.firstPlayingMs === null ? 'ended without ever playing past ' + MIN_TIME + ' s' : null);
  });
  v.addEventListener('error', () => { check(); finish('media error'); });
  const onFrame = (t, meta) => {
    v.requestVideoFrameCallback(onFrame); // first, so that nothing below can break the chain
    s.framesPresented++;
    while (pending.length > 0 && meta.mediaTime >= pending[0].time - 0.001) {
      const want = pending.shift();
      if (!canvas) {
        canvas = document.createElement('canvas');
        canvas.width = v.videoWidth;
        canvas.height = v.videoHeight;
      }
      const g = canvas.getContext('2d', { willReadFrequently: true });
      g.drawImage(v, 0, 0, canvas.width, canvas.height);
      const d = g.getImageData(want.x, want.y, 1, 1).data;
      s.samples.push({ time: want.time, x: want.x, y: want.y, mediaTime: meta.mediaTime, rgb: [d[0], d[1], d[2]] });
    }
    if (s.firstFrameMs === null) s.firstFrameMs = now();
    // Gaps while playing only: not the wait between the first frame shown and the start.
    if (s.playingEventMs !== null && s.lastFrameAt !== null && s.lastFrameAt >= s.playingEventMs - 1) {
      s.maxFrameGapMs = Math.max(s.maxFrameGapMs, t - s.lastFrameAt);
    }
    s.lastFrameAt = t;
    check();
  };
  if (v.requestVideoFrameCallback) v.requestVideoFrameCallback(onFrame);
  const poll = () => { check(); if (!finish.called) requestAnimationFrame(poll); };
  requestAnimationFrame(poll);
  setTimeout(() => {
    finish(s.firstPlayingMs === null ? 'timed out after ' + TIMEOUT_MS + ' ms before playing past ' + MIN_TIME + ' s'
      : 'timed out after ' + TIMEOUT_MS + ' ms before the end');
  }, Math.max(0, TIMEOUT_MS - now()));
  if (${JSON.stringify(o.start === 'play')}) v.play().catch((e) => { s.playRejected = e.name + ': ' + e.message; });
  window.__playback = { result: done, snapshot };
})();
</script>
</body></html>`;
}

/**
 * The colour of the decoded video frame at (x, y) in the video's own pixels, read through a
 * canvas (drawImage + getImageData). With `atTime`, pauses the video and seeks there first, and
 * throws if the seek did not land there (Chromium cannot seek a response without Range support:
 * its `seekable` is empty and a seek lands on 0; use measurePlayback's `samples` for those).
 * The page must be one from `measurePlayback(…, { keepPage: true })` (or any page whose video is
 * same-origin or CORS-enabled: a tainted canvas cannot be read).
 */
export async function pixelAt(page: Page, x: number, y: number, opts: { atTime?: number; selector?: string } = {}): Promise<[number, number, number]> {
  const args = JSON.stringify({ x, y, atTime: opts.atTime ?? null, selector: opts.selector ?? 'video' });
  return page.evaluate<[number, number, number]>(`(async ({ x, y, atTime, selector }) => {
    const v = document.querySelector(selector);
    if (!v) throw new Error('no element matches ' + selector);
    if (atTime !== null) {
      v.pause();
      const presented = new Promise((resolve) => {
        if (v.requestVideoFrameCallback) v.requestVideoFrameCallback(() => resolve());
        setTimeout(resolve, 1000);
      });
      const seeked = new Promise((resolve) => { v.addEventListener('seeked', resolve, { once: true }); setTimeout(resolve, 5000); });
      v.currentTime = atTime;
      await seeked;
      await presented;
      if (v.seeking || Math.abs(v.currentTime - atTime) > 0.05) {
        const ranges = [];
        for (let i = 0; i < v.seekable.length; i++) ranges.push(v.seekable.start(i) + '-' + v.seekable.end(i));
        throw new Error('could not seek to ' + atTime + ' s (at ' + v.currentTime + ' s, seekable: ' + (ranges.join(', ') || 'nothing')
          + '); a response without Range support cannot be seeked: sample it while it plays (measurePlayback samples)');
      }
    }
    if (v.readyState < 2) throw new Error('no decoded frame yet (readyState ' + v.readyState + ')');
    if (x < 0 || y < 0 || x >= v.videoWidth || y >= v.videoHeight) throw new Error('(' + x + ', ' + y + ') is outside the ' + v.videoWidth + 'x' + v.videoHeight + ' video');
    const canvas = document.createElement('canvas');
    canvas.width = v.videoWidth;
    canvas.height = v.videoHeight;
    const g = canvas.getContext('2d', { willReadFrequently: true });
    g.drawImage(v, 0, 0);
    const d = g.getImageData(x, y, 1, 1).data;
    return [d[0], d[1], d[2]];
  })(${args})`);
}
