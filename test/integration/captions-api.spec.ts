import request from 'supertest';
import type { ApiApp } from '../helpers/api-app';
import { startApi } from '../helpers/api-app';
import { chromiumPath, launchChromium } from '../helpers/browser';

// The WebVTT sidecar over HTTP: made from the resolved movie, no render.
let api: ApiApp;
beforeAll(async () => {
  api = await startApi();
});
afterAll(() => api.close());

const auth = () => ({ Authorization: `Bearer ${api.key}` });
const token = async (body: unknown) => (await request(api.url).post('/v2/token/t').set(auth()).send(body as object).expect(200)).body.token as string;

describe('GET /v2/get/<token>.vtt', () => {
  it('SRT captions at movie time (the layer starts at 0.5 s), as text/vtt, without a render', async () => {
    const before = api.renders.counters.started;
    const t = await token({ movie: 'captions' });
    const res = await request(api.url).get(`/v2/get/${t}.vtt`).expect(200);
    expect(res.headers['content-type']).toBe('text/vtt; charset=utf-8');
    expect(res.text).toBe('WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nAAAA BBBB\n\n00:00:02.500 --> 00:00:03.500\nCC\n');
    const head = await request(api.url).head(`/v2/get/${t}.vtt`).expect(200);
    expect(head.headers['content-length']).toBe(String(Buffer.byteLength(res.text)));
    expect((await request(api.url).get(`/${t}.vtt`).expect(200)).text).toBe(res.text); // the short form too
    expect(api.renders.counters.started).toBe(before);
  });

  it('a word list in a later scene: grouped into cues, offset by the scene, cut to the movie, escaped', async () => {
    const words = [
      { text: 'one', start: 0, end: 0.4 },
      { text: 'two', start: 0.4, end: 0.8 },
      { text: 'three', start: 0.8, end: 1 },
      { text: '<b>&', start: 1, end: 1.1 },
      { text: 'late', start: 1.8, end: 2.6 }, // after a 0.7 s pause: a cue of its own, cut at the movie's end (3 s)
    ];
    const t = await token({ movie: 'captions-words', params: { words } });
    const res = await request(api.url).get(`/v2/get/${t}.vtt`).expect(200);
    expect(res.text).toBe('WEBVTT\n\n00:00:01.000 --> 00:00:02.100\none two\nthree &amp;\n\n00:00:02.800 --> 00:00:03.000\nlate\n');
  });

  it('a movie without a captions layer: 404 that says so', async () => {
    const t = await token({ movie: 'colors' });
    const res = await request(api.url).get(`/v2/get/${t}.vtt`).expect(404);
    expect(res.body.message).toContain('has no captions layer');
  });

  it('bad caption text is a 400 at POST, naming the cue line', async () => {
    const res = await request(api.url).post('/v2/token/t').set(auth()).send({ movie: 'captions', params: { subtitles: 'WEBVTT\n\n00:01.000 --> 00:02.000\nok\n\nnot a timing\nx' } }).expect(400);
    expect(res.body.message).toContain('line 6');
  });
});

const withChromium = chromiumPath() ? it : it.skip;
describe('<track> in Chromium', () => {
  withChromium('the .vtt URL loads as a captions track of the token’s video, with its cues', async () => {
    const t = await token({ movie: 'captions' });
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      await page.goto(`${api.url}/v2/get/${t}.vtt`); // the page's origin: the track is same-origin
      // A string: this project compiles without the DOM's types.
      const cues = await page.evaluate(`(async () => {
        document.body.innerHTML = '<video src="/v2/get/${t}.mp4" muted><track kind="captions" default src="/v2/get/${t}.vtt"></video>';
        const track = document.querySelector('track');
        await new Promise((resolve, reject) => {
          track.addEventListener('load', resolve);
          track.addEventListener('error', () => reject(new Error('the track did not load')));
        });
        return Array.from(track.track.cues, (c) => [c.startTime, c.endTime, c.text]);
      })()`);
      expect(cues).toEqual([
        [1, 2, 'AAAA BBBB'],
        [2.5, 3.5, 'CC'],
      ]);
    } finally {
      await browser.close();
    }
  }, 60_000);
});
