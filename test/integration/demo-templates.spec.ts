import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { Test } from '@nestjs/testing';
import { ConfigModule } from '../../src/config/config.module';
import { EngineName } from '../../src/engines/engine';
import { EngineRegistry, EnginesModule } from '../../src/engines/engines.module';
import { brightPixels, type Frame, frameAt, meanVolume, near, pixel, probe } from '../helpers/media';
import { DEMO_TEMPLATES, renderContext } from '../helpers/render-context';

// The sample templates, rendered in full as a new user would, with their own params.
let ctx: Awaited<ReturnType<typeof renderContext>>;
let server: http.Server;
let base: string;
beforeAll(async () => {
  ctx = await renderContext({ templatesDir: DEMO_TEMPLATES, allowPrivate: true });
  // The user's own pictures arrive as URLs: serve the demo's slides as if from elsewhere.
  server = http.createServer((req, res) => {
    const file = path.join(DEMO_TEMPLATES, 'demo', 'slideshow', 'assets', path.basename(req.url ?? ''));
    if (!/^\/slide\d\.jpg$/.test(req.url ?? '') || !fs.existsSync(file)) return res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'image/jpeg' }).end(fs.readFileSync(file));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  await ctx.close();
});

it('welcome: 10 s of 1080p30 with music; the name appears, in the brand colour’s scene', async () => {
  const out = ctx.out('welcome.mp4');
  await ctx.renders.render({ project: 'demo', movie: 'welcome', params: { name: 'Zoë', brand: '#1e90ff' }, profile: { format: 'mp4' } }, out);
  const p = await probe(out);
  expect(p.video).toMatchObject({ codec_name: 'h264', width: 1920, height: 1080, nb_read_frames: '300' });
  expect(p.audio?.codec_name).toBe('aac');
  expect(p.durationSec).toBeCloseTo(10, 1);
  expect(await meanVolume(out, 4, 2)).toBeGreaterThan(-35);

  const intro = await frameAt(out, 90, 1920, 1080);
  expect(near(pixel(intro, 20, 20), [30, 144, 255], 50)).toBe(true); // the gradient starts at the brand colour
  expect(brightPixels(intro, 160, 380, 900, 140)).toBeGreaterThan(2000); // "Welcome, Zoë!"
  expect(brightPixels(await frameAt(out, 5, 1920, 1080), 160, 380, 900, 140)).toBe(0); // not before 0.4 s
  const card = await frameAt(out, 270, 1920, 1080);
  expect(near(pixel(card, 960, 1060), [30, 144, 255], 50)).toBe(true); // the brand bar of the closing card
});

it('lower-third: the SVG strip slides in over the clip after 0.8 s and carries the name', async () => {
  const out = ctx.out('lower-third.mp4');
  await ctx.renders.render(
    { project: 'demo', movie: 'lower-third', params: { name: 'Ada Lovelace', title: 'Analyst', accent: '#ff00ff' }, profile: { format: 'mp4' } },
    out,
  );
  const p = await probe(out);
  expect(p.video).toMatchObject({ width: 1920, height: 1080, nb_read_frames: '240' });
  expect(await meanVolume(out, 1, 2)).toBeGreaterThan(-40); // the clip's own sound, unmuted
  const before = await frameAt(out, 10, 1920, 1080);
  const during = await frameAt(out, 90, 1920, 1080);
  expect(brightPixels(before, 170, 790, 700, 90)).toBe(0);
  expect(brightPixels(during, 170, 790, 700, 90)).toBeGreaterThan(1500);
  expect(near(pixel(during, 128, 850), [255, 0, 255], 60)).toBe(true); // the accent bar
  // the clip moves underneath: two frames a second apart differ
  const later = await frameAt(out, 120, 1920, 1080);
  expect(during.data.equals(later.data)).toBe(false);
});

it('slideshow: four slides from URLs with captions; duration follows the list', async () => {
  const slides = [1, 2, 3, 4].map((n) => ({ image: `${base}/slide${n}.jpg`, caption: `Picture ${n}` }));
  const out = ctx.out('slideshow.webm');
  const result = await ctx.renders.render({ project: 'demo', movie: 'slideshow', params: { title: 'Trip', slides }, profile: { format: 'webm' } }, out);
  // title 2.5 s + 4 × 3 s − 4 × 0.6 s of crossfades = 12.1 s
  expect(result.plan.totalFrames).toBe(363);
  const p = await probe(out);
  expect(p.video).toMatchObject({ codec_name: 'vp9', width: 1280, height: 720, nb_read_frames: '363' });
  expect(p.audio?.codec_name).toBe('opus');
  // slide 4 (from its URL) is on screen at the end with its caption
  const last = await frameAt(out, 350, 1280, 720);
  expect(brightPixels(last, 60, 620, 500, 80)).toBeGreaterThan(300);
});

describe('promo: 12 s vertical 1080×1920 with captions and a price badge', () => {
  const [W, H] = [1080, 1920];
  const count = (frame: Frame, [x0, y0, w, h]: number[], test: (p: [number, number, number]) => boolean) => {
    let n = 0;
    for (let y = y0; y < y0 + h; y++) for (let x = x0; x < x0 + w; x++) if (test(pixel(frame, x, y))) n++;
    return n;
  };
  /** The brand's gold (#ffc94d): the captions' highlight and the saving pill. The photo's oranges are not it. */
  const gold = (p: [number, number, number]) => Math.abs(p[0] - 255) < 30 && Math.abs(p[1] - 201) < 25 && p[2] < 120;
  const white = (p: [number, number, number]) => p.every((v) => v > 235);
  const CAPTIONS = [90, 1640, 900, 240];
  const PILL = [140, 260, 300, 90]; // "SAVE 20%", from 4.2 s
  /** Leftmost and rightmost white columns of the price, in the badge's upper half. */
  const priceExtent = (frame: Frame) => {
    let [lo, hi] = [Infinity, -Infinity];
    for (let y = 1100; y < 1180; y++) for (let x = 660; x < 1000; x++) if (white(pixel(frame, x, y))) [lo, hi] = [Math.min(lo, x), Math.max(hi, x)];
    return hi - lo;
  };
  let out: string;
  beforeAll(async () => {
    out = ctx.out('promo.mp4');
    await ctx.renders.render({ project: 'demo', movie: 'promo', params: { accent: '#00ff00' }, profile: { format: 'mp4' } }, out);
  }, 120_000);

  it('mp4 of 360 frames with its beat', async () => {
    const p = await probe(out);
    expect(p.video).toMatchObject({ codec_name: 'h264', width: W, height: H, nb_read_frames: '360' });
    expect(p.audio?.codec_name).toBe('aac');
    expect(p.durationSec).toBeCloseTo(12, 1);
    expect(await meanVolume(out, 2, 3)).toBeGreaterThan(-35);
  });

  it('captions show at their cue times, the spoken word in gold moving along the line', async () => {
    const at = (n: number) => frameAt(out, n, W, H);
    expect(count(await at(9), CAPTIONS, white)).toBe(0); // 0.3 s: before cue 1 (0.7 s)
    expect(count(await at(90), CAPTIONS, white)).toBe(0); // 3.0 s: between cue 1 (→ 2.9 s) and cue 2 (3.1 s →)
    const cue1 = [await at(30), await at(45)];
    for (const f of [...cue1, await at(120)]) expect(count(f, CAPTIONS, white)).toBeGreaterThan(3000);
    const goldX = (f: Frame) => {
      let [sum, n] = [0, 0];
      for (let y = CAPTIONS[1]; y < CAPTIONS[1] + CAPTIONS[3]; y++) for (let x = CAPTIONS[0]; x < CAPTIONS[0] + CAPTIONS[2]; x++) if (gold(pixel(f, x, y))) [sum, n] = [sum + x, n + 1];
      expect(n).toBeGreaterThan(500);
      return sum / n;
    };
    expect(goldX(cue1[1]) - goldX(cue1[0])).toBeGreaterThan(50); // a later word of the same cue
  });

  it('the badge takes the accent param; the saving and the price follow the params', async () => {
    const frame = await frameAt(out, 200, W, H);
    expect(near(pixel(frame, 690, 1180), [0, 255, 0], 60)).toBe(true); // the gradient's accent end
    expect(count(await frameAt(out, 100, W, H), PILL, gold)).toBe(0); // the pill lands at 4.2 s
    expect(count(frame, PILL, gold)).toBeGreaterThan(3000); // SAVE 20%: $249 → $199

    const still = ctx.out('promo-no-saving.png');
    await ctx.renders.render({ project: 'demo', movie: 'promo', params: { was: 0, price: 1299.5 }, profile: { format: 'png' }, frame: 200 }, still);
    const other = await frameAt(still, 0, W, H);
    expect(near(pixel(other, 690, 1180), [255, 107, 74], 40)).toBe(true); // the default accent
    expect(count(other, PILL, gold)).toBe(0); // no saving, no pill
    // "$1,299.50" runs wider than "$199", shrunk to fit the badge.
    expect(priceExtent(other)).toBeGreaterThan(priceExtent(frame) + 40);
    expect(priceExtent(other)).toBeLessThan(320);
  });
});

describe('title-3d (Blender, built by its scene.py)', () => {
  let engines: Awaited<ReturnType<typeof blenderContext>>;
  async function blenderContext() {
    const moduleRef = await Test.createTestingModule({ imports: [ConfigModule.forRoot(ctx.config), EnginesModule] }).compile();
    return { engine: moduleRef.get(EngineRegistry).get(EngineName.Blender), close: () => moduleRef.close() };
  }
  beforeAll(async () => (engines = await blenderContext()));
  afterAll(async () => engines.close());

  /** Pixels of a rectangle near a colour. */
  const count = (frame: Frame, [x0, y0, w, h]: number[], test: (p: [number, number, number]) => boolean) => {
    let n = 0;
    for (let y = y0; y < y0 + h; y++) for (let x = x0; x < x0 + w; x++) if (test(pixel(frame, x, y))) n++;
    return n;
  };
  const TITLE = [170, 175, 300, 60];
  const LOGO = [270, 60, 100, 100];

  it('the title carries the name in the colour param; the logo shows or not; mp4 with its frames', async () => {
    const render = async (name: string, params: Record<string, unknown>) => {
      const out = ctx.out(name);
      fs.mkdirSync(path.dirname(out), { recursive: true });
      const result = await engines.engine.render(
        { project: 'demo', movie: 'title-3d', params: { samples: 2, ...params }, profile: { format: 'mp4' }, range: { from: 0, to: 4 } },
        out,
      );
      expect(result.frames).toBe(4);
      return out;
    };
    const green = await render('title-green.mp4', { name: 'Zoë', color: '#00ff00' });
    const noLogo = await render('title-nologo.mp4', { name: 'Zoë', color: '#ff00ff', showLogo: false });
    const probed = await probe(green);
    expect(probed.video).toMatchObject({ codec_name: 'h264', width: 640, height: 360, nb_read_frames: '4' });
    expect(probed.audio?.codec_name).toBe('aac'); // the movie's sound (silence here), as for composites
    const a = await frameAt(green, 2, 640, 360);
    const b = await frameAt(noLogo, 2, 640, 360);
    const greenish = (p: [number, number, number]) => p[1] > 90 && p[1] > p[0] * 1.6 && p[1] > p[2] * 1.6;
    const magenta = (p: [number, number, number]) => p[0] > 90 && p[2] > 90 && p[1] * 1.6 < Math.min(p[0], p[2]);
    expect(count(a, TITLE, greenish)).toBeGreaterThan(500);
    expect(count(b, TITLE, magenta)).toBeGreaterThan(500);
    expect(count(a, TITLE, magenta)).toBe(0);
    // The logo is blue where it shows, and gone (the dark backdrop) where it is hidden.
    const blue = (p: [number, number, number]) => p[2] > 110 && p[2] > p[0] * 1.5;
    expect(count(a, LOGO, blue)).toBeGreaterThan(300);
    expect(count(b, LOGO, blue)).toBeLessThan(20);
  }, 120_000);
});
