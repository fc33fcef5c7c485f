import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { MontageError } from '../../src/common/errors';
import { buildRenderArgs } from '../../src/compiler/ffmpeg-args';
import type { RenderPlan } from '../../src/compiler/render-plan';
import { brightPixels, bt709ToRgb, frameAt, meanVolume, near, pictTypes, pixel, probe, ssimPerFrame, webmClusters, yuvAt } from '../helpers/media';
import { DEMO_TEMPLATES, renderContext } from '../helpers/render-context';

type Ctx = Awaited<ReturnType<typeof renderContext>>;
let ctx: Ctx;
beforeAll(async () => {
  ctx = await renderContext();
});
afterAll(() => ctx.close());

const RED: [number, number, number] = [255, 0, 0];
const GREEN: [number, number, number] = [0, 255, 0];

describe('outputs', () => {
  it('mp4: H.264 + AAC, exact size, frame count and duration; layers where and when the template says', async () => {
    const out = ctx.out('colors.mp4');
    await ctx.renders.render({ project: 't', movie: 'colors', params: {}, profile: { format: 'mp4' } }, out);
    const p = await probe(out);
    expect(p.video).toMatchObject({ codec_name: 'h264', width: 320, height: 180, nb_read_frames: '60', pix_fmt: 'yuv420p' });
    expect(p.audio?.codec_name).toBe('aac');
    expect(p.durationSec).toBeCloseTo(2, 1);

    // The green box starts at 0.5 s (frame 15) in the top-right quarter.
    const before = await frameAt(out, 10, 320, 180);
    const after = await frameAt(out, 20, 320, 180);
    expect(near(pixel(before, 240, 45), RED)).toBe(true);
    expect(near(pixel(after, 240, 45), GREEN)).toBe(true);
    expect(near(pixel(after, 80, 45), RED)).toBe(true);
    // White text appears at 1 s (frame 30) in the lower half, not before.
    expect(brightPixels(await frameAt(out, 25, 320, 180), 0, 100, 320, 80)).toBe(0);
    expect(brightPixels(await frameAt(out, 40, 320, 180), 0, 100, 320, 80)).toBeGreaterThan(200);
  });

  it('webm: VP9 + Opus', async () => {
    const out = ctx.out('colors.webm');
    await ctx.renders.render({ project: 't', movie: 'colors', params: { box: '#0000ff' }, profile: { format: 'webm' } }, out);
    const p = await probe(out);
    expect(p.video).toMatchObject({ codec_name: 'vp9', width: 320, height: 180, nb_read_frames: '60' });
    expect(p.audio?.codec_name).toBe('opus');
    expect(near(pixel(await frameAt(out, 30, 320, 180), 240, 45), [0, 0, 255])).toBe(true);
  });

  it('gif: palette-optimised at 15 fps', async () => {
    const out = ctx.out('colors.gif');
    await ctx.renders.render({ project: 't', movie: 'colors', params: {}, profile: { format: 'gif' } }, out);
    const p = await probe(out);
    expect(p.video).toMatchObject({ codec_name: 'gif', width: 320, height: 180, nb_read_frames: '30' });
    expect(near(pixel(await frameAt(out, 15, 320, 180), 240, 45), GREEN, 60)).toBe(true);
  });

  it.each([
    ['png', 'png'],
    ['jpg', 'jpeg'],
    ['webp', 'webp'],
  ] as const)('%s still of a chosen frame', async (format, sharpFormat) => {
    const out = ctx.out(`frame.${format}`);
    await ctx.renders.render({ project: 't', movie: 'colors', params: {}, profile: { format, quality: 90 }, frame: 45 }, out);
    const meta = await sharp(out).metadata();
    expect(meta).toMatchObject({ format: sharpFormat, width: 320, height: 180 });
    const { data, info } = await sharp(out).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const at = (x: number, y: number) => [0, 1, 2].map((c) => data[(y * info.width + x) * info.channels + c]) as [number, number, number];
    expect(near(at(240, 45), GREEN)).toBe(true);
    expect(near(at(40, 20), RED)).toBe(true);
  });

  it('jpg quality changes the file size', async () => {
    const low = ctx.out('q10.jpg');
    const high = ctx.out('q95.jpg');
    await ctx.renders.render({ project: 't', movie: 'motion', params: {}, profile: { format: 'jpg', quality: 10 }, frame: 5 }, low);
    await ctx.renders.render({ project: 't', movie: 'motion', params: {}, profile: { format: 'jpg', quality: 95 }, frame: 5 }, high);
    expect(fs.statSync(high).size).toBeGreaterThan(fs.statSync(low).size * 1.5);
  });

  it('a still defaults to the poster frame and refuses frames outside the movie', async () => {
    await expect(
      ctx.renders.render({ project: 't', movie: 'colors', params: {}, profile: { format: 'png' }, frame: 60 }, ctx.out('x.png')),
    ).rejects.toMatchObject({ kind: 'bad_input' });
    const plan = await ctx.renders.plan({ project: 't', movie: 'colors', params: {} });
    expect(plan.posterFrame).toBe(30);
  });
});

describe('colour: BT.709, limited range, as browsers show it', () => {
  // The colors movie with its box in a brand colour: a solid 160×90 layer at (160, 0) from frame 15.
  const BRAND: [number, number, number] = [0xe9, 0x4e, 0x1b];
  const request = { project: 't', movie: 'colors', params: { box: '#e94e1b' } };
  const within3 = (rgb: [number, number, number]) => rgb.forEach((c, i) => expect(Math.abs(c - BRAND[i])).toBeLessThanOrEqual(3));

  it.each(['mp4', 'webm'] as const)('%s: tagged bt709/tv, and the decoded YUV read with BT.709 is the brand colour', async (format) => {
    const out = ctx.out(`brand.${format}`);
    await ctx.renders.render({ ...request, profile: { format } }, out);
    const { video } = await probe(out);
    expect(video).toMatchObject({ color_space: 'bt709', color_primaries: 'bt709', color_transfer: 'bt709', color_range: 'tv' });
    const yuv = await yuvAt(out, 30, 240, 45, 320, 180); // the middle of the box
    within3(bt709ToRgb(yuv));
  });

  it('png still: RGB of the brand colour', async () => {
    const out = ctx.out('brand.png');
    await ctx.renders.render({ ...request, profile: { format: 'png' }, frame: 30 }, out);
    const { data, info } = await sharp(out).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const i = (45 * info.width + 240) * info.channels;
    within3([data[i], data[i + 1], data[i + 2]]);
  });

  it('gif: the palette keeps the brand colour', async () => {
    const out = ctx.out('brand.gif');
    await ctx.renders.render({ ...request, profile: { format: 'gif' } }, out);
    expect(near(pixel(await frameAt(out, 15, 320, 180), 240, 45), BRAND, 6)).toBe(true);
  });
});

describe('streamable webm', () => {
  it('is written in clusters and holds every frame', async () => {
    const out = ctx.out('live.webm');
    await ctx.renders.render({ project: 't', movie: 'colors', params: {}, profile: { format: 'webm', streamable: true } }, out);
    expect(webmClusters(out)).toBeGreaterThan(1);
    const p = await probe(out);
    expect(p.video).toMatchObject({ codec_name: 'vp9', nb_read_frames: '60', color_space: 'bt709' });
    expect(p.audio?.codec_name).toBe('opus');
  });

  it('grows while it is encoded: whole clusters reach the disk before the render ends', async () => {
    const out = ctx.out('growing.webm');
    fs.mkdirSync(path.dirname(out), { recursive: true }); // written in place, as the live file is
    const seen = new Set<number>();
    const poll = setInterval(() => {
      try {
        seen.add(webmClusters(out));
      } catch {
        // not there yet, or no more than a part of the header
      }
    }, 10);
    const result = await ctx.renders
      .render({ project: 't', movie: 'slow', params: {}, profile: { format: 'webm', streamable: true } }, out, undefined, { inPlace: true })
      .finally(() => clearInterval(poll));
    const final = webmClusters(out);
    // A file's 256 KiB write buffer used to hold everything back until the end.
    expect(result.bytes).toBeLessThan(256 * 1024);
    expect([...seen].filter((n) => n >= 2 && n < final).length).toBeGreaterThan(0);
    expect((await probe(out)).video?.nb_read_frames).toBe('240');
  });

  it('a movie of colours alone (no input file) encodes its silence to Opus', async () => {
    const plan: RenderPlan = {
      templateId: 't/x', version: 'v1', width: 320, height: 180, fps: 30, totalFrames: 60, background: '#e94e1b', posterFrame: 0,
      scenes: [{ index: 0, startFrame: 0, endFrame: 60, background: '#e94e1b', layers: [] }],
      audio: [],
    };
    const out = ctx.out('plain.webm');
    fs.mkdirSync(path.dirname(out), { recursive: true });
    await promisify(execFile)('ffmpeg', buildRenderArgs(plan, { from: 0, to: 60 }, { format: 'webm', streamable: true }, out));
    const p = await probe(out);
    expect(p.video?.nb_read_frames).toBe('60');
    expect(p.audio?.codec_name).toBe('opus');
    expect(webmClusters(out)).toBeGreaterThan(1);
  });
});

describe('deterministic frame ranges', () => {
  it('frames [0,30) and [30,69) rendered apart are the frames of one pass, across a crossfade, a wipe and running animations', async () => {
    const whole = ctx.out('whole.mp4');
    const a = ctx.out('a.mp4');
    const b = ctx.out('b.mp4');
    const req = { project: 't', movie: 'motion', params: {}, profile: { format: 'mp4' as const, crf: 12 } };
    const result = await ctx.renders.render(req, whole);
    expect(result.plan.totalFrames).toBe(69); // (1.2 + 1 + 0.8 s − 0.4 − 0.3 s of transitions) × 30 fps
    await ctx.renders.render({ ...req, range: { from: 0, to: 30 } }, a);
    await ctx.renders.render({ ...req, range: { from: 30, to: 69 } }, b);

    expect((await probe(a)).video?.nb_read_frames).toBe('30');
    expect((await probe(b)).video?.nb_read_frames).toBe('39');
    expect((await pictTypes(b))[0]).toBe('I'); // a segment starts on a keyframe
    const ssim = [...(await ssimPerFrame(whole, a, 0, 30)), ...(await ssimPerFrame(whole, b, 30, 39))];
    expect(ssim).toHaveLength(69);
    expect(Math.min(...ssim)).toBeGreaterThanOrEqual(0.99);
  });
});

describe('animations and transitions', () => {
  it('slide-in moves the box from the left; crossfade mixes; wipe reveals from the right', async () => {
    const out = ctx.out('motion.mp4');
    await ctx.renders.render({ project: 't', movie: 'motion', params: {}, profile: { format: 'mp4', crf: 12 } }, out);
    const yellowX = async (n: number) => {
      const f = await frameAt(out, n, 320, 180);
      for (let x = 0; x < 320; x++) if (near(pixel(f, x, 90), [255, 255, 0], 60)) return x;
      return -1;
    };
    const early = await yellowX(3);
    const settled = await yellowX(20); // the 0.5 s slide is over at frame 15
    expect(settled).toBeGreaterThanOrEqual(18);
    expect(settled).toBeLessThanOrEqual(22);
    expect(early).toBeLessThan(settled); // coming in from the left

    // Crossfade into the green scene: frames 24..35. Halfway, a background pixel is a mix.
    const mid = pixel(await frameAt(out, 30, 320, 180), 300, 170);
    const done = pixel(await frameAt(out, 40, 320, 180), 300, 170);
    expect(near(done, [0, 160, 0])).toBe(true);
    expect(mid[1]).toBeGreaterThan(40);
    expect(mid[1]).toBeLessThan(150);

    // Wipe into the blue scene: frames 45..54, its edge moving right → left.
    const wipe = await frameAt(out, 49, 320, 180);
    expect(near(pixel(wipe, 310, 170), [0, 0, 192])).toBe(true);
    expect(near(pixel(wipe, 10, 170), [0, 160, 0])).toBe(true);
  });

  it('audio fades in and out, and the whole track is there', async () => {
    const out = ctx.out('motion-audio.mp4');
    await ctx.renders.render({ project: 't', movie: 'motion', params: {}, profile: { format: 'mp4' } }, out);
    const start = await meanVolume(out, 0, 0.05);
    const middle = await meanVolume(out, 1, 0.2);
    expect(middle).toBeGreaterThan(-25);
    expect(start).toBeLessThan(middle - 6);
  });
});

describe('hostile text', () => {
  const nasty: Array<[string, string]> = [
    ['quotes, colons, backslashes, %{…}', `it's "quoted" and \\back\\slashed: a:b; c,d [x] %{pts} %{localtime} \${HOME} $(id)`],
    ['newlines', 'line one\nline two\r\nline three'],
    ['emoji and right-to-left', 'emoji 😀🎬 and RTL שלום عليكم mixed'],
    ['Handlebars and markup', '{{name}} {{#each x}} <b>bold?</b> &amp; </span>'],
    ['a long word', 'x'.repeat(400)],
  ];
  it.each(nasty)('%s: rendered literally, never in the filter graph', async (_label, text) => {
    const out = ctx.out('hostile.png');
    const plan = await ctx.renders.plan({ project: 't', movie: 'hostile', params: { text } });
    const args = buildRenderArgs(plan, { from: 0, to: plan.totalFrames }, { format: 'mp4' }, 'out.mp4');
    // The text reaches ffmpeg only as pixels of a raster, referenced by file name.
    for (const fragment of text.split(/\s+/).filter((w) => w.length > 2)) {
      for (const arg of args) expect(arg).not.toContain(fragment);
    }
    await ctx.renders.render({ project: 't', movie: 'hostile', params: { text }, profile: { format: 'png' }, frame: 10 }, out);
    const { data, info } = await sharp(out).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    let ink = 0;
    for (let i = 0; i < info.width * info.height; i++) if (data[i * 3] > 200) ink++;
    expect(ink).toBeGreaterThan(300);
  });
});

describe('bad input: one clear error, nothing written', () => {
  const attempt = (req: Partial<Parameters<Ctx['renders']['render']>[0]>, out = ctx.out('bad.mp4')) =>
    ctx.renders.render({ project: 't', movie: 'colors', params: {}, profile: { format: 'mp4' }, ...req }, out).then(
      () => {
        throw new Error('expected a failure');
      },
      (err: MontageError) => err,
    );

  it.each([
    ['unknown project', { project: 'nope' }, 'not_found', 'project'],
    ['unknown movie', { movie: 'nope' }, 'not_found', 'movie'],
    ['unknown variable', { params: { colour: '#fff' } }, 'bad_input', 'colour'],
    ['wrong type', { params: { box: 'green' } }, 'bad_input', 'box'],
    ['huge string', { params: { label: 'x'.repeat(20_000) } }, 'bad_input', 'label'],
    ['missing required variable', { movie: 'media', params: {} }, 'bad_input', 'photo'],
    ['a path for a media param', { movie: 'media', params: { photo: '/etc/passwd' } }, 'bad_input', 'photo'],
  ])('%s → error naming the field', async (_label, req, kind, field) => {
    const err = await attempt(req as never);
    expect(err).toBeInstanceOf(MontageError);
    expect(err.kind).toBe(kind);
    expect(err.details.map((d) => d.field)).toContain(field);
    expect(fs.existsSync(ctx.out('bad.mp4'))).toBe(false);
  });

  it('leaves no partial file when ffmpeg fails', async () => {
    const broken = await renderContext({ env: { FFMPEG_PATH: '/bin/false' } });
    try {
      const out = broken.out('broken.mp4');
      await expect(broken.renders.render({ project: 't', movie: 'colors', params: {}, profile: { format: 'mp4' } }, out)).rejects.toMatchObject({
        kind: 'render_failed',
      });
      expect(fs.readdirSync(path.dirname(out))).toEqual([]);
    } finally {
      await broken.close();
    }
  });
});

describe('stills: only what is seen at the frame', () => {
  // demo/welcome at 1080p: its poster (3 s) is in the intro; `name` is shown there and in the card.
  let demo: Ctx;
  beforeAll(async () => {
    demo = await renderContext({ templatesDir: DEMO_TEMPLATES });
  });
  afterAll(() => demo.close());
  const request = { project: 'demo', movie: 'welcome', params: { name: 'Still Life' } };
  const rgbOf = async (file: string) => (await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true })).data;

  it('plans only the layers seen at the frame, and draws the same pixels as the whole movie planned', async () => {
    const out = demo.out('poster.png');
    const result = await demo.renders.render({ ...request, profile: { format: 'png' } }, out);
    expect(result.range).toEqual({ from: 90, to: 91 });
    // The card's layers (its own `name` text among them) were not prepared for the poster.
    expect(result.plan.scenes.map((s) => s.layers.map((l) => l.id))).toEqual([['s0.l0', 's0.l1', 's0.l2', 's0.l3'], []]);
    expect(result.plan.audio).toEqual([]);
    const whole = await demo.renders.plan(request);
    expect(whole.scenes[1].layers).toHaveLength(3);
    const reference = demo.out('poster-whole-plan.png');
    await promisify(execFile)('ffmpeg', buildRenderArgs(whole, result.range, { format: 'png' }, reference));
    expect(Buffer.compare(await rgbOf(out), await rgbOf(reference))).toBe(0);
  });

  it.each(['jpg', 'webp'] as const)('%s: the frame raw from ffmpeg, encoded by sharp, is the png still within the codec’s error', async (format) => {
    const png = demo.out('frame-100.png');
    await demo.renders.render({ ...request, profile: { format: 'png' }, frame: 100 }, png);
    const out = demo.out(`frame-100.${format}`);
    await demo.renders.render({ ...request, profile: { format, quality: 85 }, frame: 100 }, out);
    const meta = await sharp(out).metadata();
    expect(meta).toMatchObject({ format: format === 'jpg' ? 'jpeg' : 'webp', width: 1920, height: 1080 });
    const [a, b] = [await rgbOf(png), await rgbOf(out)];
    let sum = 0;
    for (let i = 0; i < a.length; i++) sum += Math.abs(a[i] - b[i]);
    expect(sum / a.length).toBeLessThan(1.5);
    expect(sum / a.length).toBeGreaterThan(0); // lossy: really the encoded file, not the png
    // Nothing left beside the output (no PNG in between).
    expect(fs.readdirSync(path.dirname(out)).filter((f) => f.startsWith('.'))).toEqual([]);
  });

  it('a jpg still whose ffmpeg fails leaves no file', async () => {
    const broken = await renderContext({ templatesDir: DEMO_TEMPLATES, env: { FFMPEG_PATH: '/bin/false' } });
    try {
      const out = broken.out('broken.jpg');
      await expect(broken.renders.render({ ...request, profile: { format: 'jpg' } }, out)).rejects.toMatchObject({ kind: 'render_failed' });
      expect(fs.readdirSync(path.dirname(out))).toEqual([]);
    } finally {
      await broken.close();
    }
  });
});
